//! Request paths and the bytes of the GET requests sent for them.

use anyhow::bail;

use crate::input_file::meaningful_lines;
use crate::limits::PATH_BYTES_MAX;

/// Checks one request target: origin form (`/...`), printable ASCII, no
/// spaces, at most [`PATH_BYTES_MAX`] bytes.
pub fn check_path(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err(format!("path {path:?} must start with '/'"));
    }
    if path.len() > PATH_BYTES_MAX {
        return Err(format!("path of {} bytes is longer than {PATH_BYTES_MAX}", path.len()));
    }
    if let Some(b) = path.bytes().find(|b| !b.is_ascii_graphic()) {
        return Err(format!(
            "path {path:?} holds byte 0x{b:02x}; percent-encode spaces and non-ASCII"
        ));
    }
    Ok(())
}

/// Parses a paths file: one path per meaningful line.
pub fn parse_paths(text: &str) -> anyhow::Result<Vec<String>> {
    let mut paths = Vec::new();
    for (line_no, line) in meaningful_lines(text)? {
        if let Err(e) = check_path(line) {
            bail!("line {line_no}: {e}");
        }
        paths.push(line.to_string());
    }
    if paths.is_empty() {
        bail!("no paths in the file");
    }
    Ok(paths)
}

/// The bytes of a keep-alive GET for `path` on `host`.
pub fn get_request(host: &str, path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: proconsul-loadtest\r\nAccept: */*\r\n\r\n").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_bytes_are_a_valid_get() {
        let req = get_request("127.0.0.1:8500", "/v1/kv/bench/key?stale");
        let mut headers = [httparse::EMPTY_HEADER; 8];
        let mut parsed = httparse::Request::new(&mut headers);
        let status = parsed.parse(&req).unwrap();
        assert_eq!(status, httparse::Status::Complete(req.len()));
        assert_eq!(parsed.method, Some("GET"));
        assert_eq!(parsed.path, Some("/v1/kv/bench/key?stale"));
        assert_eq!(parsed.version, Some(1));
        assert_eq!(parsed.headers[0].name, "Host");
        assert_eq!(parsed.headers[0].value, b"127.0.0.1:8500");
    }

    #[test]
    fn paths_file_is_checked_line_by_line() {
        assert_eq!(
            parse_paths("# kv\n/v1/kv/a\n\n/v1/kv/b\n").unwrap(),
            vec!["/v1/kv/a", "/v1/kv/b"]
        );
        let err = parse_paths("/ok\nv1/kv/a\n").unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains("must start with '/'"), "{err}");
        let err = parse_paths("/a b\n").unwrap_err().to_string();
        assert!(err.contains("0x20"), "{err}");
        assert!(parse_paths("# nothing\n").is_err());
    }

    #[test]
    fn over_long_path_is_refused() {
        let long = format!("/{}", "a".repeat(PATH_BYTES_MAX));
        assert!(check_path(&long).unwrap_err().contains("longer than 8192"));
        assert_eq!(check_path(&long[..PATH_BYTES_MAX]), Ok(()));
    }
}
