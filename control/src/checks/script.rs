//! Script checks: run a program (no shell) with a timeout (Consul's
//! `CheckMonitor`). Exit 0 is passing, 1 warning, anything else (or a
//! signal) critical. Standard output and error share one bounded capture,
//! as in Consul. The child gets its own process group, so a timeout (or a
//! stopped runner) kills everything it started.

use std::os::fd::OwnedFd;
use std::process::Stdio;
use std::time::Duration;

use proconsul_shared::state::CheckStatus;
use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;
use tokio::sync::Semaphore;

use super::go_text::{go_duration, go_errno_text};
use super::output::TailBuffer;

/// How long to wait for a killed child to be reaped before giving up.
pub const SCRIPT_REAP_WAIT: Duration = Duration::from_secs(5);
/// Bytes read from the child's output per read.
const READ_CHUNK_BYTES: usize = 4096;

/// The shared bound on script processes running at once.
#[derive(Debug)]
pub struct ScriptSlots {
    semaphore: Semaphore,
    slots_max: usize,
}

impl ScriptSlots {
    /// At most `slots_max` scripts at once.
    pub fn new(slots_max: usize) -> Self {
        ScriptSlots {
            semaphore: Semaphore::new(slots_max),
            slots_max,
        }
    }
}

/// One run of `args` with `timeout`, output bounded to `output_max_bytes`.
/// Waits at most `timeout` for a free slot, else reports critical.
pub async fn probe_script(
    args: &[String],
    timeout: Duration,
    output_max_bytes: usize,
    slots: &ScriptSlots,
) -> (CheckStatus, String) {
    let Ok(Ok(_slot)) = tokio::time::timeout(timeout, slots.semaphore.acquire()).await else {
        return (
            CheckStatus::Critical,
            format!(
                "Check not run: {} script checks already running (limit), none finished within {}",
                slots.slots_max,
                go_duration(timeout)
            ),
        );
    };
    match run_script(args, timeout, output_max_bytes).await {
        Ok(result) => result,
        Err(text) => (CheckStatus::Critical, text),
    }
}

async fn run_script(
    args: &[String],
    timeout: Duration,
    output_max_bytes: usize,
) -> Result<(CheckStatus, String), String> {
    let Some((program, rest)) = args.split_first() else {
        return Err("Invalid check: no script arguments".to_string());
    };
    let (reader, writer) = std::io::pipe().map_err(|e| format!("pipe: {}", go_errno_text(&e)))?;
    let writer_for_stderr = writer.try_clone().map_err(|e| format!("pipe: {}", go_errno_text(&e)))?;
    let mut command = tokio::process::Command::new(program);
    command
        .args(rest)
        .stdin(Stdio::null())
        .stdout(Stdio::from(writer))
        .stderr(Stdio::from(writer_for_stderr))
        .process_group(0)
        .kill_on_drop(true);
    let spawned = command.spawn();
    // The command holds our copies of the pipe's write end: drop them, or
    // the read below never sees end-of-file.
    drop(command);
    let mut child = spawned.map_err(|e| spawn_error_output(program, &e))?;
    let mut group = GroupKill {
        pgid: child.id().and_then(|id| i32::try_from(id).ok()),
    };
    let mut receiver =
        pipe::Receiver::from_owned_fd(OwnedFd::from(reader)).map_err(|e| format!("pipe: {}", go_errno_text(&e)))?;

    let mut captured = TailBuffer::new(output_max_bytes);
    let finished = tokio::time::timeout(timeout, async {
        let (_, status) = tokio::join!(read_to_tail(&mut receiver, &mut captured), child.wait());
        status
    })
    .await;
    match finished {
        Err(_elapsed) => {
            group.kill();
            let _ = tokio::time::timeout(SCRIPT_REAP_WAIT, child.wait()).await;
            let mut text = format!("Timed out ({}) running check", go_duration(timeout));
            let output = captured.script_output();
            if !output.is_empty() {
                text.push_str("\n\n");
                text.push_str(&output);
            }
            Ok((CheckStatus::Critical, text))
        }
        Ok(Err(error)) => Err(format!("wait: {}", go_errno_text(&error))),
        Ok(Ok(exit)) => {
            group.disarm();
            let status = match exit.code() {
                Some(0) => CheckStatus::Passing,
                Some(1) => CheckStatus::Warning,
                _ => CheckStatus::Critical,
            };
            Ok((status, captured.script_output()))
        }
    }
}

async fn read_to_tail(receiver: &mut pipe::Receiver, captured: &mut TailBuffer) {
    let mut chunk = vec![0u8; READ_CHUNK_BYTES];
    loop {
        match receiver.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => captured.write(&chunk[..n]),
        }
    }
}

/// Go's `exec` error texts for a program that could not start.
fn spawn_error_output(program: &str, error: &std::io::Error) -> String {
    if error.kind() == std::io::ErrorKind::NotFound && !program.contains('/') {
        return format!("exec: \"{program}\": executable file not found in $PATH");
    }
    format!("fork/exec {program}: {}", go_errno_text(error))
}

/// Kills the child's process group on timeout, or when the runner task is
/// dropped mid-run (a stopped check), until the child has been reaped.
struct GroupKill {
    pgid: Option<i32>,
}

impl GroupKill {
    fn kill(&mut self) {
        if let Some(pgid) = self.pgid.take() {
            // The group may already be gone; nothing to do then.
            let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid), nix::sys::signal::Signal::SIGKILL);
        }
    }

    fn disarm(&mut self) {
        self.pgid = None;
    }
}

impl Drop for GroupKill {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn sh(script: &str) -> Vec<String> {
        vec!["sh".to_string(), "-c".to_string(), script.to_string()]
    }

    async fn run(args: &[String], timeout: Duration, output_max_bytes: usize) -> (CheckStatus, String) {
        probe_script(args, timeout, output_max_bytes, &ScriptSlots::new(4)).await
    }

    #[tokio::test]
    async fn exit_codes_map_to_statuses() {
        let t = Duration::from_secs(5);
        assert_eq!(
            run(&sh("echo hi"), t, 4096).await,
            (CheckStatus::Passing, "hi\n".to_string())
        );
        assert_eq!(
            run(&sh("echo hi; exit 1"), t, 4096).await,
            (CheckStatus::Warning, "hi\n".to_string())
        );
        assert_eq!(
            run(&sh("echo bad >&2; exit 2"), t, 4096).await,
            (CheckStatus::Critical, "bad\n".to_string())
        );
        assert_eq!(run(&sh("kill -9 $$"), t, 4096).await.0, CheckStatus::Critical);
    }

    #[tokio::test]
    async fn stdout_and_stderr_share_the_capture() {
        let (status, output) = run(&sh("echo out; echo err >&2"), Duration::from_secs(5), 4096).await;
        assert_eq!(status, CheckStatus::Passing);
        assert_eq!(output, "out\nerr\n");
    }

    #[tokio::test]
    async fn output_is_bounded_like_consul() {
        let (status, output) = run(&sh("printf '0123456789abcdef'"), Duration::from_secs(5), 4).await;
        assert_eq!(status, CheckStatus::Passing);
        assert_eq!(output, "Captured 4 of 16 bytes\n...\ncdef");
    }

    #[tokio::test]
    async fn timeout_kills_the_process_group() {
        let started = Instant::now();
        // The grandchild `sleep` holds the output pipe: only a group kill
        // ends the run.
        let (status, output) = run(&sh("echo started; sleep 30 & wait"), Duration::from_millis(300), 4096).await;
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "took {:?}",
            started.elapsed()
        );
        assert_eq!(status, CheckStatus::Critical);
        assert_eq!(output, "Timed out (300ms) running check\n\nstarted\n");
    }

    #[tokio::test]
    async fn spawn_errors_read_like_go() {
        let t = Duration::from_secs(5);
        let missing = vec!["proconsul-no-such-program".to_string()];
        assert_eq!(
            run(&missing, t, 4096).await,
            (
                CheckStatus::Critical,
                "exec: \"proconsul-no-such-program\": executable file not found in $PATH".to_string()
            )
        );
        let missing_path = vec!["/nonexistent/prog".to_string()];
        assert_eq!(
            run(&missing_path, t, 4096).await.1,
            "fork/exec /nonexistent/prog: no such file or directory"
        );
        assert_eq!(run(&[], t, 4096).await.0, CheckStatus::Critical);
    }

    #[tokio::test]
    async fn concurrent_scripts_are_limited() {
        let slots = ScriptSlots::new(1);
        let long = sh("sleep 1");
        let short = sh("true");
        let (first, second) = tokio::join!(
            probe_script(&long, Duration::from_secs(5), 4096, &slots),
            probe_script(&short, Duration::from_millis(200), 4096, &slots),
        );
        assert_eq!(first.0, CheckStatus::Passing);
        assert_eq!(second.0, CheckStatus::Critical);
        assert_eq!(
            second.1,
            "Check not run: 1 script checks already running (limit), none finished within 200ms"
        );
        // Once the slot is free, scripts run again.
        assert_eq!(
            probe_script(&short, Duration::from_secs(5), 4096, &slots).await.0,
            CheckStatus::Passing
        );
    }
}
