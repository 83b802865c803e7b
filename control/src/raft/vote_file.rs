//! The persisted raft vote: `<raft dir>/vote`, an 8-byte magic and one
//! framed record (see [`super::record`]), replaced atomically on each save.
//! A damaged vote file is never guessed around: forgetting a vote could let
//! this server vote twice in one term.

use std::io;
use std::path::Path;

use super::durable_file::{read_bounded, write_atomically};
use super::limits::VOTE_FILE_BYTES_MAX;
use super::record::{append_record, scan};
use super::types::Vote;

const VOTE_FILE: &str = "vote";
const VOTE_MAGIC: &[u8; 8] = b"PCVOTE01";

/// Saves `vote` durably before returning.
pub fn save(dir: &Path, vote: &Vote) -> io::Result<()> {
    let mut buf = VOTE_MAGIC.to_vec();
    append_record(&mut buf, vote, VOTE_FILE_BYTES_MAX as usize).map_err(io::Error::other)?;
    write_atomically(dir, VOTE_FILE, &buf)
}

/// Loads the saved vote, `None` if none was ever saved. Any damage is an
/// `InvalidData` error naming the file.
pub fn load(dir: &Path) -> io::Result<Option<Vote>> {
    let Some(buf) = read_bounded(dir, VOTE_FILE, VOTE_FILE_BYTES_MAX)? else {
        return Ok(None);
    };
    let invalid = |why: String| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("vote file {} is damaged: {why}", dir.join(VOTE_FILE).display()),
        )
    };
    if buf.len() < VOTE_MAGIC.len() || &buf[..VOTE_MAGIC.len()] != VOTE_MAGIC {
        return Err(invalid("bad magic".into()));
    }
    let found = scan(&buf, VOTE_MAGIC.len(), VOTE_FILE_BYTES_MAX as usize).map_err(|e| invalid(e.to_string()))?;
    match (found.records.as_slice(), found.torn) {
        ([record], None) => postcard::from_bytes(record.payload)
            .map(Some)
            .map_err(|e| invalid(e.to_string())),
        (_, Some(torn)) => Err(invalid(torn.reason.into())),
        (records, None) => Err(invalid(format!("{} records instead of one", records.len()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vote_survives_reopen_and_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()).unwrap(), None);
        let mut vote = Vote::new(3, 1);
        save(dir.path(), &vote).unwrap();
        assert_eq!(load(dir.path()).unwrap(), Some(vote));
        vote.commit();
        save(dir.path(), &vote).unwrap();
        let loaded = load(dir.path()).unwrap().unwrap();
        assert!(loaded.is_committed());
        assert_eq!(loaded.leader_id().get_term(), 3);
        assert_eq!(loaded.leader_id().voted_for(), Some(1));
    }

    #[test]
    fn damaged_vote_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        save(dir.path(), &Vote::new(7, 2)).unwrap();
        let path = dir.path().join(VOTE_FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        let err = load(dir.path()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("vote file"), "{err}");

        std::fs::write(&path, b"garbage!").unwrap();
        assert!(load(dir.path()).unwrap_err().to_string().contains("bad magic"));
    }
}
