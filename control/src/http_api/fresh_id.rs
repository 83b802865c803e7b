//! A new random UUID for a table keyed by ID (sessions, prepared
//! queries): drawn until one is unused, a bounded number of times, as
//! Consul's `uuid.GenerateUUID` loops do.

/// New UUIDs drawn before giving up on finding an unused one.
pub const UUID_ATTEMPTS_MAX: usize = 8;

/// A hyphenated v4 UUID for which `taken` is false, or `None` when
/// [`UUID_ATTEMPTS_MAX`] draws all collided (the caller answers 500).
pub fn fresh_uuid(taken: impl Fn(&str) -> bool) -> Option<String> {
    (0..UUID_ATTEMPTS_MAX)
        .map(|_| uuid::Uuid::new_v4().hyphenated().to_string())
        .find(|id| !taken(id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn an_unused_uuid_is_returned_at_once() {
        let id = fresh_uuid(|_| false).expect("an id");
        assert_eq!(id.len(), 36);
        assert!(uuid::Uuid::parse_str(&id).is_ok());
    }

    #[test]
    fn the_draws_are_bounded_when_every_id_is_taken() {
        let draws = Cell::new(0usize);
        let id = fresh_uuid(|_| {
            draws.set(draws.get() + 1);
            true
        });
        assert_eq!(id, None);
        assert_eq!(draws.get(), UUID_ATTEMPTS_MAX);
    }
}
