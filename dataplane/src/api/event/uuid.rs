//! Event IDs: random (version 4) UUIDs, and the 64-bit index Consul
//! derives from one.

use std::fmt::Write;

use proconsul_shared::state::uuid_halves;

/// A random version-4 UUID in its 36-character text form.
pub fn random_uuid(bytes: [u8; 16]) -> String {
    let mut b = bytes;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let mut out = String::with_capacity(36);
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        write!(out, "{byte:02x}").expect("writing to a String");
    }
    out
}

/// Consul's list index for an event ID: the UUID's first 64 bits XOR its
/// last 64 bits. `None` when `id` is not a UUID in text form.
pub fn uuid_index(id: &str) -> Option<u64> {
    uuid_halves(id).map(|(high, low)| high ^ low)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_random_uuid_has_the_v4_shape() {
        let id = random_uuid([0xff; 16]);
        assert_eq!(id, "ffffffff-ffff-4fff-bfff-ffffffffffff");
        let id = random_uuid([0; 16]);
        assert_eq!(id, "00000000-0000-4000-8000-000000000000");
    }

    #[test]
    fn the_index_folds_the_two_halves() {
        assert_eq!(uuid_index("00000000-0000-0001-0000-000000000003"), Some(1 ^ 3));
        assert_eq!(
            uuid_index("b54fe110-7af5-cafc-d1fb-afc8ba432b1c"),
            Some(0xb54f_e110_7af5_cafc ^ 0xd1fb_afc8_ba43_2b1c)
        );
        assert_eq!(uuid_index("not-a-uuid"), None);
        assert_eq!(uuid_index("zzzzzzzz-0000-0000-0000-000000000000"), None);
    }
}
