//! Bounds every write is checked against before it reaches raft. The data
//! plane checks the same limits first (with Consul's HTTP texts); this is
//! the control plane's own guard, so a bad frame can never put an
//! unbounded entry into the log. Pure.

use proconsul_shared::command::{CatalogRegistration, Command, NodeRegistration};
use proconsul_shared::ipc::messages::ControlError;
use proconsul_shared::limits::{KV_KEY_BYTES_MAX, KV_VALUE_BYTES_MAX, TXN_OPS_MAX};
use proconsul_shared::state::{uuid_halves, UserEvent, USER_EVENT_BYTES_MAX};

use crate::raft::write_batch::BATCH_COMMANDS_MAX;

/// Longest node name or address accepted, in bytes.
pub const NODE_FIELD_BYTES_MAX: usize = 256;
/// Most tagged addresses or meta pairs on one node.
pub const NODE_MAP_ENTRIES_MAX: usize = 64;

/// Most checks in one catalog registration.
pub const REGISTRATION_CHECKS_MAX: usize = crate::http_api::catalog::CATALOG_CHECKS_MAX;
/// Most bytes of check text (names, notes, outputs) in one registration.
pub const REGISTRATION_CHECK_BYTES_MAX: usize = 1024 * 1024;

fn bad_request(message: String) -> ControlError {
    ControlError { status: 400, message }
}

/// An argument the `Catalog.Register` / `Catalog.Deregister` RPC refuses
/// with a plain error, which Consul's HTTP layer answers `500`.
fn rpc_argument_error(message: &str) -> ControlError {
    ControlError {
        status: 500,
        message: message.into(),
    }
}

fn too_large(message: String) -> ControlError {
    ControlError { status: 413, message }
}

fn key(key: &str) -> Result<(), ControlError> {
    if key.len() > KV_KEY_BYTES_MAX {
        return Err(bad_request(format!(
            "Key too long: {} bytes exceeds the {KV_KEY_BYTES_MAX}-byte limit",
            key.len()
        )));
    }
    Ok(())
}

fn value(value: &[u8]) -> Result<(), ControlError> {
    if value.len() > KV_VALUE_BYTES_MAX {
        return Err(too_large(format!(
            "Request body({} bytes) too large, max size: {KV_VALUE_BYTES_MAX} bytes. See https://developer.hashicorp.com/consul/docs/agent/config/config-files#kv_max_value_size.",
            value.len()
        )));
    }
    Ok(())
}

fn named_key(k: &str) -> Result<(), ControlError> {
    if k.is_empty() {
        return Err(bad_request("Missing key name".into()));
    }
    key(k)
}

/// `Catalog.Register`'s text for a registration without a node name.
pub const MISSING_NODE: &str = "Must provide node";
/// `Catalog.Register`'s text for a registration without an address that
/// does not set `SkipNodeUpdate`.
pub const MISSING_ADDRESS: &str = "Must provide address if SkipNodeUpdate is not set";
/// Longest node metadata key accepted, in bytes (Consul's agent-side bound;
/// `Catalog.Register` itself has none, this is the guard).
pub const NODE_META_KEY_BYTES_MAX: usize = 128;
/// Longest node metadata value accepted, in bytes (likewise).
pub const NODE_META_VALUE_BYTES_MAX: usize = 512;

/// go-uuid's `ParseUUID` error for `id`, or `None` when it parses: the
/// text Consul puts after `Bad node ID: `. Byte by byte, as Go indexes a
/// string: the length, then the four dashes, then the first byte that is
/// not a hex digit (`encoding/hex`'s `invalid byte: %#U`).
fn go_uuid_error(id: &str) -> Option<String> {
    const DASHES: [usize; 4] = [8, 13, 18, 23];
    let bytes = id.as_bytes();
    if bytes.len() != 36 {
        return Some("uuid string is wrong length".into());
    }
    if DASHES.iter().any(|&i| bytes[i] != b'-') {
        return Some("uuid is improperly formatted".into());
    }
    let invalid = bytes
        .iter()
        .enumerate()
        .filter(|(i, _)| !DASHES.contains(i))
        .map(|(_, &b)| b)
        .find(|b| !b.is_ascii_hexdigit())?;
    // `%#U` of the byte as a rune: `U+00XX`, then the character quoted
    // when Go's `strconv.IsPrint` holds (printable ASCII, and Latin-1
    // letters and symbols except the no-break space and the soft hyphen).
    let printable = matches!(invalid, 0x20..=0x7e | 0xa1..=0xff) && invalid != 0xad;
    let shown = if printable {
        format!("U+{invalid:04X} '{}'", char::from(invalid))
    } else {
        format!("U+{invalid:04X}")
    };
    Some(format!("encoding/hex: invalid byte: {shown}"))
}

/// The node arguments `Catalog.Register` checks first, in its order: a
/// node name, a node ID that is a UUID when one is given, and an address
/// unless the registration skips the node update. Consul's HTTP layer
/// answers these plain RPC errors `500` with their text.
pub fn catalog_node_arguments(reg: &NodeRegistration, skip_node_update: bool) -> Result<(), ControlError> {
    if reg.node.is_empty() {
        return Err(rpc_argument_error(MISSING_NODE));
    }
    if !reg.id.is_empty() {
        if let Some(why) = go_uuid_error(&reg.id) {
            return Err(rpc_argument_error(&format!("Bad node ID: {why}")));
        }
    }
    if reg.address.is_empty() && !skip_node_update {
        return Err(rpc_argument_error(MISSING_ADDRESS));
    }
    Ok(())
}

/// The size bounds of a node: its fields, the number of tagged addresses
/// and meta pairs, and each of their keys and values.
fn node_bounds(reg: &NodeRegistration) -> Result<(), ControlError> {
    let fields = [&reg.node, &reg.address, &reg.id, &reg.datacenter];
    if fields.iter().any(|f| f.len() > NODE_FIELD_BYTES_MAX) {
        return Err(bad_request(format!(
            "Node field too long (limit: {NODE_FIELD_BYTES_MAX} bytes)"
        )));
    }
    if reg.meta.len() > NODE_MAP_ENTRIES_MAX || reg.tagged_addresses.len() > NODE_MAP_ENTRIES_MAX {
        return Err(bad_request(format!(
            "Node metadata cannot contain more than {NODE_MAP_ENTRIES_MAX} key/value pairs"
        )));
    }
    if let Some(k) = reg.meta.keys().find(|k| k.len() > NODE_META_KEY_BYTES_MAX) {
        return Err(bad_request(format!(
            "Node metadata key too long: {} bytes exceeds the {NODE_META_KEY_BYTES_MAX}-byte limit",
            k.len()
        )));
    }
    if let Some(v) = reg.meta.values().find(|v| v.len() > NODE_META_VALUE_BYTES_MAX) {
        return Err(bad_request(format!(
            "Node metadata value too long: {} bytes exceeds the {NODE_META_VALUE_BYTES_MAX}-byte limit",
            v.len()
        )));
    }
    let tagged = reg.tagged_addresses.iter().flat_map(|(k, v)| [k, v]);
    if tagged.into_iter().any(|t| t.len() > NODE_FIELD_BYTES_MAX) {
        return Err(bad_request(format!(
            "Node tagged address too long (limit: {NODE_FIELD_BYTES_MAX} bytes)"
        )));
    }
    Ok(())
}

/// The agent's own node registration: a name and an address, within the
/// bounds.
fn node(reg: &NodeRegistration) -> Result<(), ControlError> {
    if reg.node.is_empty() {
        return Err(rpc_argument_error(MISSING_NODE));
    }
    if reg.address.is_empty() {
        return Err(rpc_argument_error(MISSING_ADDRESS));
    }
    node_bounds(reg)
}

fn registration(reg: &CatalogRegistration) -> Result<(), ControlError> {
    use crate::http_api::service_def::{validate_meta, SERVICE_TEXT_BYTES_MAX, TAGS_MAX};
    catalog_node_arguments(&reg.node, reg.skip_node_update)?;
    node_bounds(&reg.node)?;
    if let Some(s) = &reg.service {
        let fields = [&s.id, &s.service, &s.address, &s.kind, &s.socket_path];
        if fields.iter().any(|f| f.len() > SERVICE_TEXT_BYTES_MAX)
            || s.tags.iter().any(|t| t.len() > SERVICE_TEXT_BYTES_MAX)
        {
            return Err(bad_request(format!(
                "Service field too long (limit: {SERVICE_TEXT_BYTES_MAX} bytes)"
            )));
        }
        if s.tags.len() > TAGS_MAX {
            return Err(bad_request(format!("Service cannot have more than {TAGS_MAX} tags")));
        }
        validate_meta(&s.meta).map_err(|why| bad_request(format!("Invalid Service Meta: {why}")))?;
    }
    if reg.checks.len() > REGISTRATION_CHECKS_MAX {
        return Err(bad_request(format!(
            "Too many checks in one registration (limit {REGISTRATION_CHECKS_MAX})"
        )));
    }
    let check_bytes: usize = reg
        .checks
        .iter()
        .map(|c| c.check_id.len() + c.name.len() + c.notes.len() + c.output.len() + c.service_id.len())
        .sum();
    if check_bytes > REGISTRATION_CHECK_BYTES_MAX {
        return Err(too_large(format!(
            "Checks too large: {check_bytes} bytes exceeds the {REGISTRATION_CHECK_BYTES_MAX}-byte limit"
        )));
    }
    Ok(())
}

/// Checks a write against every bound.
pub fn validate(command: &Command) -> Result<(), ControlError> {
    match command {
        Command::KvSet { key: k, value: v, .. } | Command::KvCas { key: k, value: v, .. } => {
            named_key(k)?;
            value(v)
        }
        Command::KvDelete { key: k } | Command::KvDeleteCas { key: k, .. } => named_key(k),
        Command::KvDeleteTree { prefix } => key(prefix),
        Command::Txn { ops } => {
            if ops.len() > TXN_OPS_MAX {
                return Err(too_large(format!(
                    "Transaction contains too many operations ({} > {TXN_OPS_MAX})",
                    ops.len()
                )));
            }
            for op in ops {
                key(&op.key)?;
                value(&op.value)?;
            }
            Ok(())
        }
        Command::NodeRegister(reg) => node(reg),
        Command::NodeDeregister { node } | Command::CatalogDeregister { node, .. } => {
            if node.is_empty() {
                return Err(rpc_argument_error(MISSING_NODE));
            }
            Ok(())
        }
        Command::CatalogRegister(reg) => registration(reg),
        Command::EventFire(event) => user_event(event),
        Command::Batch(members) => batch(members),
        Command::ConfigEntrySet { entry, .. } => config_entry(&entry.kind, &entry.name, entry.size_bytes()),
        Command::ConfigEntryDelete { kind, name, .. } => config_entry(kind, name, kind.len() + name.len()),
        Command::PreparedQueryCreate(query) | Command::PreparedQueryUpdate(query) => prepared_query(query),
        Command::PreparedQueryDelete { id } => prepared_query_id(id),
        Command::KvLock {
            key: k,
            value: v,
            session: s,
            ..
        }
        | Command::KvUnlock {
            key: k,
            value: v,
            session: s,
            ..
        } => {
            named_key(k)?;
            value(v)?;
            session_id(s)
        }
        Command::SessionCreate(s) => session(s),
        Command::SessionDestroy { id } | Command::SessionRenew { id } => session_id(id),
    }
}

/// Longest session ID accepted (a UUID is 36 bytes).
pub const SESSION_ID_BYTES_MAX: usize = 128;
/// Longest session `Name`.
pub const SESSION_NAME_BYTES_MAX: usize = 1024;
/// Most checks (node and service checks together) one session names.
pub const SESSION_CHECKS_MAX: usize = 64;
/// Longest check ID a session names.
pub const SESSION_CHECK_ID_BYTES_MAX: usize = 256;
/// A session ID: present and short.
fn session_id(id: &str) -> Result<(), ControlError> {
    if id.is_empty() {
        return Err(bad_request("Missing session".into()));
    }
    if id.len() > SESSION_ID_BYTES_MAX {
        return Err(bad_request(format!(
            "Session ID too long: {} bytes exceeds the {SESSION_ID_BYTES_MAX}-byte limit",
            id.len()
        )));
    }
    Ok(())
}

/// A new session: every field within its bound.
fn session(s: &proconsul_shared::state::Session) -> Result<(), ControlError> {
    session_id(&s.id)?;
    if s.node.is_empty() || s.node.len() > NODE_FIELD_BYTES_MAX {
        return Err(bad_request(format!(
            "Session node must be 1 to {NODE_FIELD_BYTES_MAX} bytes"
        )));
    }
    if s.name.len() > SESSION_NAME_BYTES_MAX {
        return Err(bad_request(format!(
            "Session name too long: {} bytes exceeds the {SESSION_NAME_BYTES_MAX}-byte limit",
            s.name.len()
        )));
    }
    let checks = s.node_checks.len() + s.service_checks.len();
    if checks > SESSION_CHECKS_MAX {
        return Err(bad_request(format!(
            "Session names too many checks: {checks} > {SESSION_CHECKS_MAX}"
        )));
    }
    let ids = s.node_checks.iter().chain(s.service_checks.iter().map(|c| &c.id));
    if let Some(id) = ids.into_iter().find(|id| id.len() > SESSION_CHECK_ID_BYTES_MAX) {
        return Err(bad_request(format!(
            "Session check ID too long: {} bytes exceeds the {SESSION_CHECK_ID_BYTES_MAX}-byte limit",
            id.len()
        )));
    }
    if s.ttl.len() > 32 {
        return Err(bad_request(format!("Invalid Session TTL '{}'", s.ttl)));
    }
    Ok(())
}

/// A config entry write: a kind and a name, within
/// [`CONFIG_ENTRY_BYTES_MAX`].
fn config_entry(kind: &str, name: &str, size_bytes: usize) -> Result<(), ControlError> {
    use proconsul_shared::state::CONFIG_ENTRY_BYTES_MAX;
    if kind.is_empty() || name.is_empty() {
        return Err(bad_request("Config entry must have a Kind and a Name".into()));
    }
    if size_bytes > CONFIG_ENTRY_BYTES_MAX {
        return Err(too_large(format!(
            "Config entry too large: {size_bytes} bytes exceeds the {CONFIG_ENTRY_BYTES_MAX}-byte limit"
        )));
    }
    Ok(())
}

/// A prepared query write: a UUID for an ID, within
/// [`PREPARED_QUERY_BYTES_MAX`](proconsul_shared::state::PREPARED_QUERY_BYTES_MAX).
fn prepared_query(query: &proconsul_shared::state::PreparedQuery) -> Result<(), ControlError> {
    use proconsul_shared::state::PREPARED_QUERY_BYTES_MAX;
    prepared_query_id(&query.id)?;
    let size_bytes = query.size_bytes();
    if size_bytes > PREPARED_QUERY_BYTES_MAX {
        return Err(too_large(format!(
            "Prepared query too large: {size_bytes} bytes exceeds the {PREPARED_QUERY_BYTES_MAX}-byte limit"
        )));
    }
    Ok(())
}

/// A prepared query ID is a UUID.
fn prepared_query_id(id: &str) -> Result<(), ControlError> {
    if uuid_halves(id).is_none() {
        return Err(bad_request(format!("Prepared query ID {id:?} is not a UUID")));
    }
    Ok(())
}

/// A batch (built by the raft write batcher from validated writes; this is
/// the guard): at most [`BATCH_COMMANDS_MAX`] members, none a batch itself,
/// each member within its own bounds.
fn batch(members: &[Command]) -> Result<(), ControlError> {
    if members.len() > BATCH_COMMANDS_MAX {
        return Err(too_large(format!(
            "Batch contains too many writes ({} > {BATCH_COMMANDS_MAX})",
            members.len()
        )));
    }
    for member in members {
        if matches!(member, Command::Batch(_)) {
            return Err(bad_request("A batch may not contain a batch".into()));
        }
        validate(member)?;
    }
    Ok(())
}

fn user_event(event: &UserEvent) -> Result<(), ControlError> {
    if event.name.is_empty() {
        return Err(bad_request("User event missing name".into()));
    }
    if uuid_halves(&event.id).is_none() {
        return Err(bad_request(format!("User event ID {:?} is not a UUID", event.id)));
    }
    if event.size_bytes() > USER_EVENT_BYTES_MAX {
        return Err(ControlError {
            status: 500,
            message: format!("user event exceeds configured limit of {USER_EVENT_BYTES_MAX} bytes before encoding"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proconsul_shared::test_fixtures::{node_at, node_registration};
    use proconsul_shared::txn::{KvVerb, TxnKvOp};

    #[test]
    fn prepared_queries_need_a_uuid_and_fit_the_size_limit() {
        use proconsul_shared::state::{PreparedQuery, PREPARED_QUERY_BYTES_MAX};
        let id = "11111111-2222-3333-4444-555555555555";
        let query = |id: &str, tags: usize| PreparedQuery {
            id: id.into(),
            service: proconsul_shared::state::ServiceQuery {
                service: "web".into(),
                tags: vec!["t".repeat(1024); tags],
                ..Default::default()
            },
            ..PreparedQuery::default()
        };
        assert_eq!(validate(&Command::PreparedQueryCreate(query(id, 1))), Ok(()));
        assert_eq!(
            validate(&Command::PreparedQueryUpdate(query("nope", 1)))
                .unwrap_err()
                .status,
            400
        );
        let too_big = validate(&Command::PreparedQueryCreate(query(
            id,
            PREPARED_QUERY_BYTES_MAX / 1024,
        )))
        .unwrap_err();
        assert_eq!(too_big.status, 413);
        assert!(
            too_big.message.starts_with("Prepared query too large"),
            "{}",
            too_big.message
        );
        assert_eq!(validate(&Command::PreparedQueryDelete { id: id.into() }), Ok(()));
        assert_eq!(
            validate(&Command::PreparedQueryDelete { id: "".into() })
                .unwrap_err()
                .status,
            400
        );
    }

    fn set(key: &str, len: usize) -> Command {
        Command::KvSet {
            key: key.into(),
            value: vec![b'x'; len],
            flags: 0,
        }
    }

    #[test]
    fn user_events_need_a_name_and_fit_the_size_limit() {
        let event = |name: &str, payload: usize| {
            Command::EventFire(UserEvent {
                id: "0f2b5a0e-6f4c-4c1e-9d55-1f4f3c1c0a11".into(),
                name: name.into(),
                payload: Some(vec![b'x'; payload]),
                version: 1,
                ..UserEvent::default()
            })
        };
        assert_eq!(validate(&event("deploy", 10)), Ok(()));
        assert_eq!(validate(&event("", 10)).unwrap_err().status, 400);
        let mut bad_id = UserEvent {
            id: "not-a-uuid".into(),
            name: "deploy".into(),
            ..UserEvent::default()
        };
        let refused = validate(&Command::EventFire(bad_id.clone())).unwrap_err();
        assert_eq!(refused.status, 400);
        assert!(refused.message.contains("is not a UUID"), "{refused:?}");
        bad_id.id = "0f2b5a0e-6f4c-4c1e-9d55-1f4f3c1c0a11".into();
        assert_eq!(validate(&Command::EventFire(bad_id)), Ok(()));
        let too_big = validate(&event("deploy", USER_EVENT_BYTES_MAX)).unwrap_err();
        assert_eq!(too_big.status, 500);
        assert!(
            too_big.message.contains("exceeds configured limit of 512 bytes"),
            "{too_big:?}"
        );
    }

    #[test]
    fn batches_are_bounded_flat_and_check_every_member() {
        let event = Command::EventFire(UserEvent {
            id: "0f2b5a0e-6f4c-4c1e-9d55-1f4f3c1c0a11".into(),
            name: "deploy".into(),
            ..UserEvent::default()
        });
        let ok = Command::Batch(vec![set("a", 1), event.clone(), set("b", 1)]);
        assert_eq!(validate(&ok), Ok(()));
        let nested = Command::Batch(vec![set("a", 1), Command::Batch(vec![set("b", 1)])]);
        assert_eq!(
            validate(&nested).unwrap_err().message,
            "A batch may not contain a batch"
        );
        let two_events = Command::Batch(vec![event.clone(), event]);
        assert_eq!(validate(&two_events), Ok(()), "events of one batch share its index");
        let bad_member = Command::Batch(vec![set("a", 1), set("", 1)]);
        assert_eq!(validate(&bad_member).unwrap_err().message, "Missing key name");
        let too_many = Command::Batch(vec![set("a", 1); BATCH_COMMANDS_MAX + 1]);
        let e = validate(&too_many).unwrap_err();
        assert_eq!(e.status, 413);
        assert_eq!(e.message, "Batch contains too many writes (257 > 256)");
    }

    #[test]
    fn kv_bounds() {
        assert_eq!(validate(&set("k", KV_VALUE_BYTES_MAX)), Ok(()));
        assert_eq!(validate(&set("k", KV_VALUE_BYTES_MAX + 1)).unwrap_err().status, 413);
        let e = validate(&set(&"k".repeat(KV_KEY_BYTES_MAX + 1), 1)).unwrap_err();
        assert_eq!(e.status, 400);
        assert!(e.message.starts_with("Key too long"));
        assert_eq!(validate(&set("", 1)).unwrap_err().message, "Missing key name");
        assert_eq!(
            validate(&Command::KvDelete { key: String::new() }).unwrap_err().message,
            "Missing key name"
        );
        assert_eq!(
            validate(&Command::KvDeleteTree { prefix: String::new() }),
            Ok(()),
            "deleting everything is allowed"
        );
    }

    #[test]
    fn txn_bounds() {
        let op = TxnKvOp {
            verb: KvVerb::Set,
            key: "k".into(),
            value: b"v".to_vec(),
            flags: 0,
            index: 0,
            session: None,
        };
        let ok = Command::Txn {
            ops: vec![op.clone(); TXN_OPS_MAX],
        };
        assert_eq!(validate(&ok), Ok(()));
        let too_many = Command::Txn {
            ops: vec![op.clone(); TXN_OPS_MAX + 1],
        };
        let e = validate(&too_many).unwrap_err();
        assert_eq!(e.status, 413);
        assert_eq!(e.message, "Transaction contains too many operations (129 > 128)");
        let mut big = op;
        big.value = vec![0; KV_VALUE_BYTES_MAX + 1];
        assert_eq!(validate(&Command::Txn { ops: vec![big] }).unwrap_err().status, 413);
    }

    #[test]
    fn node_bounds() {
        let mut reg = node_at("n1", "127.0.0.1");
        assert_eq!(validate(&Command::NodeRegister(reg.clone())), Ok(()));
        reg.address.clear();
        let missing = validate(&Command::NodeRegister(reg.clone())).unwrap_err();
        assert_eq!((missing.status, missing.message.as_str()), (500, MISSING_ADDRESS));
        reg.address = "a".repeat(NODE_FIELD_BYTES_MAX + 1);
        assert_eq!(validate(&Command::NodeRegister(reg.clone())).unwrap_err().status, 400);
        reg.address = "127.0.0.1".into();
        for i in 0..=NODE_MAP_ENTRIES_MAX {
            reg.meta.insert(format!("k{i}"), "v".into());
        }
        assert!(validate(&Command::NodeRegister(reg)).is_err());
        for unnamed in [
            Command::NodeDeregister { node: String::new() },
            Command::CatalogDeregister {
                node: String::new(),
                service_id: None,
                check_id: None,
            },
        ] {
            let e = validate(&unnamed).unwrap_err();
            assert_eq!((e.status, e.message.as_str()), (500, "Must provide node"));
        }
    }

    #[test]
    fn catalog_registration_bounds() {
        use proconsul_shared::state::{HealthCheck, ServiceInstance};
        let node = node_at("n1", "127.0.0.1");
        let reg = |service: Option<ServiceInstance>, checks: Vec<HealthCheck>| {
            Command::CatalogRegister(CatalogRegistration {
                node: node.clone(),
                skip_node_update: false,
                service,
                checks,
            })
        };
        let web = ServiceInstance {
            id: "web".into(),
            service: "web".into(),
            ..ServiceInstance::default()
        };
        assert_eq!(validate(&reg(Some(web.clone()), vec![])), Ok(()));
        let mut tagged = web.clone();
        tagged.tags = vec!["t".into(); crate::http_api::service_def::TAGS_MAX + 1];
        assert_eq!(validate(&reg(Some(tagged), vec![])).unwrap_err().status, 400);
        let mut meta = web;
        meta.meta.insert("consul-x".into(), "1".into());
        assert!(validate(&reg(Some(meta), vec![]))
            .unwrap_err()
            .message
            .starts_with("Invalid Service Meta"));
        let check = HealthCheck {
            check_id: "c".into(),
            ..HealthCheck::default()
        };
        let e = validate(&reg(None, vec![check.clone(); REGISTRATION_CHECKS_MAX + 1])).unwrap_err();
        assert_eq!(
            e.message,
            format!("Too many checks in one registration (limit {REGISTRATION_CHECKS_MAX})")
        );
        let mut big = check;
        big.output = "x".repeat(REGISTRATION_CHECK_BYTES_MAX + 1);
        assert_eq!(validate(&reg(None, vec![big])).unwrap_err().status, 413);
    }

    #[test]
    fn go_uuid_errors_are_go_uuids_texts() {
        assert_eq!(go_uuid_error("11111111-2222-3333-4444-555555555555"), None);
        assert_eq!(go_uuid_error("ABCDEF00-2222-3333-4444-555555555555"), None);
        let cases = [
            ("nope", "uuid string is wrong length"),
            ("11111111-2222-3333-4444-5555555555555", "uuid string is wrong length"),
            ("11111111x2222-3333-4444-555555555555", "uuid is improperly formatted"),
            (
                "11111111-2222-3333-4444-55555555555g",
                "encoding/hex: invalid byte: U+0067 'g'",
            ),
            (
                "1111111 -2222-3333-4444-55555555555g",
                "encoding/hex: invalid byte: U+0020 ' '",
            ),
            (
                "1111111\t-2222-3333-4444-555555555555",
                "encoding/hex: invalid byte: U+0009",
            ),
            // A two-byte character: Go reports its first byte.
            (
                "111111\u{e9}-2222-3333-4444-555555555555",
                "encoding/hex: invalid byte: U+00C3 '\u{c3}'",
            ),
        ];
        for (id, want) in cases {
            assert_eq!(go_uuid_error(id).as_deref(), Some(want), "{id:?}");
        }
    }

    #[test]
    fn catalog_node_arguments_in_consuls_order() {
        let reg = |node: &str, id: &str, address: &str| NodeRegistration {
            id: id.into(),
            ..node_at(node, address)
        };
        let uuid = "11111111-2222-3333-4444-555555555555";
        assert_eq!(catalog_node_arguments(&reg("n", uuid, "a"), false), Ok(()));
        assert_eq!(catalog_node_arguments(&reg("n", "", ""), true), Ok(()), "skipped");
        let refused = |r: NodeRegistration, skip: bool| {
            let e = catalog_node_arguments(&r, skip).unwrap_err();
            (e.status, e.message)
        };
        assert_eq!(refused(reg("", "bad", ""), false), (500, MISSING_NODE.into()));
        assert_eq!(
            refused(reg("n", "bad", ""), true),
            (500, "Bad node ID: uuid string is wrong length".into()),
            "the ID before the address"
        );
        assert_eq!(refused(reg("n", uuid, ""), false), (500, MISSING_ADDRESS.into()));
    }

    #[test]
    fn catalog_registrations_may_skip_the_address_but_not_the_bounds() {
        let mut reg = CatalogRegistration {
            skip_node_update: true,
            ..node_registration("n1", "")
        };
        assert_eq!(validate(&Command::CatalogRegister(reg.clone())), Ok(()));
        // Consul keeps no rule on node metadata keys here: reserved
        // prefixes and odd characters go through, within the size bounds.
        reg.node.meta.insert("consul-x y".into(), "v".into());
        assert_eq!(validate(&Command::CatalogRegister(reg.clone())), Ok(()));
        let refused = |reg: &CatalogRegistration| validate(&Command::CatalogRegister(reg.clone())).unwrap_err();
        let mut long_key = reg.clone();
        long_key
            .node
            .meta
            .insert("k".repeat(NODE_META_KEY_BYTES_MAX + 1), "v".into());
        let e = refused(&long_key);
        assert_eq!(
            (e.status, e.message.as_str()),
            (400, "Node metadata key too long: 129 bytes exceeds the 128-byte limit")
        );
        let mut long_value = reg.clone();
        long_value
            .node
            .meta
            .insert("k".into(), "v".repeat(NODE_META_VALUE_BYTES_MAX + 1));
        let e = refused(&long_value);
        assert_eq!(
            (e.status, e.message.as_str()),
            (
                400,
                "Node metadata value too long: 513 bytes exceeds the 512-byte limit"
            )
        );
        let mut long_tagged = reg.clone();
        long_tagged
            .node
            .tagged_addresses
            .insert("lan".into(), "a".repeat(NODE_FIELD_BYTES_MAX + 1));
        let e = refused(&long_tagged);
        assert_eq!(
            (e.status, e.message.as_str()),
            (400, "Node tagged address too long (limit: 256 bytes)")
        );
        reg.skip_node_update = false;
        let e = refused(&reg);
        assert_eq!((e.status, e.message.as_str()), (500, MISSING_ADDRESS));
        reg.node.address = "10.0.0.1".into();
        reg.node.id = "not-a-uuid".into();
        let e = refused(&reg);
        assert_eq!(
            (e.status, e.message.as_str()),
            (500, "Bad node ID: uuid string is wrong length")
        );
    }

    #[test]
    fn session_writes_are_bounded() {
        use proconsul_shared::state::{Session, SessionBehavior, SessionServiceCheck};
        let ok = Session {
            id: "11111111-1111-1111-1111-111111111111".into(),
            name: "n".into(),
            node: "node1".into(),
            lock_delay_ns: 15_000_000_000,
            behavior: SessionBehavior::Release,
            ttl: "30s".into(),
            node_checks: vec!["serfHealth".into()],
            service_checks: Vec::new(),
            create_index: 0,
            modify_index: 0,
        };
        assert_eq!(validate(&Command::SessionCreate(ok.clone())), Ok(()));
        let too_many = Session {
            service_checks: vec![
                SessionServiceCheck {
                    id: "c".into(),
                    namespace: String::new()
                };
                SESSION_CHECKS_MAX
            ],
            ..ok.clone()
        };
        let bad = [
            Session {
                id: String::new(),
                ..ok.clone()
            },
            Session {
                id: "x".repeat(SESSION_ID_BYTES_MAX + 1),
                ..ok.clone()
            },
            Session {
                node: String::new(),
                ..ok.clone()
            },
            Session {
                name: "x".repeat(SESSION_NAME_BYTES_MAX + 1),
                ..ok.clone()
            },
            Session {
                node_checks: vec!["x".repeat(SESSION_CHECK_ID_BYTES_MAX + 1)],
                ..ok.clone()
            },
            too_many,
        ];
        for s in bad {
            assert_eq!(validate(&Command::SessionCreate(s)).unwrap_err().status, 400);
        }
        assert_eq!(
            validate(&Command::SessionRenew { id: String::new() })
                .unwrap_err()
                .message,
            "Missing session"
        );
        let lock = Command::KvLock {
            key: "k".into(),
            value: Vec::new(),
            flags: 0,
            session: "y".repeat(SESSION_ID_BYTES_MAX + 1),
        };
        assert_eq!(validate(&lock).unwrap_err().status, 400);
    }
}
