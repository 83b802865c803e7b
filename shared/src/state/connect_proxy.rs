//! The Connect fields of a service instance: `Proxy` (Consul's
//! `ConnectProxyConfig`, set on `connect-proxy` and gateway instances) and
//! `Connect` (`Native`).
//!
//! Structured fields are kept as fields; the free-form `Config` maps (of
//! the proxy and of each upstream) are kept as compact JSON text with
//! sorted keys (`""` = absent), bounded at registration, and rendered back
//! as JSON.

use serde::{Deserialize, Serialize};

/// `Proxy.MeshGateway` / `Upstreams[].MeshGateway`: `{"Mode": ...}`.
#[derive(
    Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
pub struct MeshGatewayConfig {
    /// `""`, `none`, `local` or `remote`.
    pub mode: String,
}

/// One `Proxy.Expose.Paths` entry.
#[derive(
    Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
pub struct ExposePath {
    pub listener_port: u16,
    pub path: String,
    pub local_path_port: u16,
    pub protocol: String,
    pub parsed_from_check: bool,
}

/// `Proxy.Expose`.
#[derive(
    Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
pub struct ExposeConfig {
    pub checks: bool,
    pub paths: Vec<ExposePath>,
}

/// `Proxy.TransparentProxy`.
#[derive(
    Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
pub struct TransparentProxyConfig {
    pub outbound_listener_port: u16,
    pub dialed_directly: bool,
}

/// One `Proxy.Upstreams` entry (Consul's `Upstream`).
#[derive(
    Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
pub struct Upstream {
    /// `service` (the default) or `prepared_query`.
    pub destination_type: String,
    pub destination_namespace: String,
    pub destination_partition: String,
    pub destination_peer: String,
    pub destination_name: String,
    pub datacenter: String,
    pub local_bind_address: String,
    pub local_bind_port: u16,
    pub local_bind_socket_path: String,
    pub local_bind_socket_mode: String,
    /// Compact JSON object text, `""` when absent.
    pub config_json: String,
    pub mesh_gateway: MeshGatewayConfig,
    pub centrally_configured: bool,
}

/// A service's `Proxy` block (Consul's `ConnectProxyConfig`). All empty on
/// a service that is not a proxy or gateway.
#[derive(
    Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
pub struct ServiceProxy {
    pub destination_service_name: String,
    pub destination_service_id: String,
    pub local_service_address: String,
    pub local_service_port: u16,
    pub local_service_socket_path: String,
    /// `""`, `direct` or `transparent`.
    pub mode: String,
    pub transparent_proxy: TransparentProxyConfig,
    /// Compact JSON object text, `""` when absent.
    pub config_json: String,
    pub upstreams: Vec<Upstream>,
    pub mesh_gateway: MeshGatewayConfig,
    pub expose: ExposeConfig,
}

/// A service's `Connect` block as the catalog stores it.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    rkyv::Archive,
    rkyv::Serialize,
    rkyv::Deserialize,
)]
pub struct ServiceConnect {
    /// The service speaks Connect itself (no sidecar).
    pub native: bool,
}

/// The `Kind` of a Connect sidecar or standalone proxy.
pub const KIND_CONNECT_PROXY: &str = "connect-proxy";

/// The tagged address under which an instance carries its service's
/// virtual IP.
pub const TAGGED_ADDRESS_VIRTUAL_IP: &str = "consul-virtual";
