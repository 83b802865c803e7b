//! Consecutive success/failure counting before a status change is reported
//! (Consul's `StatusHandler`). Pure.
//!
//! Consul's semantics, kept here exactly:
//! * passing and warning count as successes, critical as a failure; each
//!   resets the other counter;
//! * a success is reported once `success_before_passing` successes are in a
//!   row, with the probe's own status (passing or warning);
//! * a failure is reported critical once `failures_before_critical`
//!   failures are in a row, else warning once `failures_before_warning`
//!   are (which defaults to `failures_before_critical` when 0);
//! * the counters start at their thresholds, so the very first probe is
//!   reported whatever it says;
//! * below a threshold nothing is reported (the check keeps its status).

use proconsul_shared::state::CheckStatus;

/// Counters of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusThresholds {
    success_before_passing: u32,
    failures_before_warning: u32,
    failures_before_critical: u32,
    successes_in_row: u32,
    failures_in_row: u32,
}

impl StatusThresholds {
    /// Counters primed so the first result is reported.
    pub fn new(success_before_passing: u32, failures_before_warning: u32, failures_before_critical: u32) -> Self {
        let failures_before_warning = if failures_before_warning == 0 {
            failures_before_critical
        } else {
            failures_before_warning
        };
        StatusThresholds {
            success_before_passing,
            failures_before_warning,
            failures_before_critical,
            successes_in_row: success_before_passing,
            failures_in_row: failures_before_critical,
        }
    }

    /// Feeds one probe result; returns the status to report, if any.
    pub fn observe(&mut self, probed: CheckStatus) -> Option<CheckStatus> {
        match probed {
            CheckStatus::Passing | CheckStatus::Warning => {
                self.successes_in_row = self.successes_in_row.saturating_add(1);
                self.failures_in_row = 0;
                (self.successes_in_row >= self.success_before_passing).then_some(probed)
            }
            CheckStatus::Critical => {
                self.failures_in_row = self.failures_in_row.saturating_add(1);
                self.successes_in_row = 0;
                if self.failures_in_row >= self.failures_before_critical {
                    Some(CheckStatus::Critical)
                } else if self.failures_in_row >= self.failures_before_warning {
                    Some(CheckStatus::Warning)
                } else {
                    None
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CheckStatus::{Critical, Passing, Warning};

    fn feed(t: &mut StatusThresholds, probes: &[CheckStatus]) -> Vec<Option<CheckStatus>> {
        probes.iter().map(|p| t.observe(*p)).collect()
    }

    #[test]
    fn zero_thresholds_report_every_result() {
        let mut t = StatusThresholds::new(0, 0, 0);
        assert_eq!(
            feed(&mut t, &[Passing, Critical, Warning, Critical]),
            vec![Some(Passing), Some(Critical), Some(Warning), Some(Critical)]
        );
    }

    #[test]
    fn first_result_is_reported_whatever_the_thresholds() {
        assert_eq!(StatusThresholds::new(3, 0, 3).observe(Passing), Some(Passing));
        assert_eq!(StatusThresholds::new(3, 0, 3).observe(Critical), Some(Critical));
    }

    #[test]
    fn success_before_passing_needs_consecutive_successes() {
        let mut t = StatusThresholds::new(3, 0, 0);
        assert_eq!(t.observe(Critical), Some(Critical));
        assert_eq!(feed(&mut t, &[Passing, Passing]), vec![None, None]);
        // A failure resets the run of successes.
        assert_eq!(t.observe(Critical), Some(Critical));
        assert_eq!(
            feed(&mut t, &[Passing, Warning, Passing, Passing]),
            vec![None, None, Some(Passing), Some(Passing)]
        );
    }

    #[test]
    fn warning_counts_as_success_and_is_reported_as_warning() {
        let mut t = StatusThresholds::new(2, 0, 0);
        assert_eq!(t.observe(Critical), Some(Critical));
        assert_eq!(feed(&mut t, &[Warning, Warning]), vec![None, Some(Warning)]);
    }

    #[test]
    fn failures_before_critical_and_warning() {
        let mut t = StatusThresholds::new(0, 2, 4);
        assert_eq!(t.observe(Passing), Some(Passing));
        assert_eq!(
            feed(&mut t, &[Critical, Critical, Critical, Critical, Critical]),
            vec![None, Some(Warning), Some(Warning), Some(Critical), Some(Critical)]
        );
        // A success resets the run of failures.
        assert_eq!(t.observe(Passing), Some(Passing));
        assert_eq!(t.observe(Critical), None);
    }

    #[test]
    fn failures_before_warning_defaults_to_critical_threshold() {
        let mut t = StatusThresholds::new(0, 0, 3);
        assert_eq!(t.observe(Passing), Some(Passing));
        assert_eq!(
            feed(&mut t, &[Critical, Critical, Critical]),
            vec![None, None, Some(Critical)]
        );
    }

    #[test]
    fn counters_saturate_instead_of_overflowing() {
        let mut t = StatusThresholds::new(u32::MAX, 0, u32::MAX);
        for _ in 0..3 {
            assert_eq!(t.observe(Passing), Some(Passing));
        }
    }
}
