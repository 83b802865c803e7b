//! `ServiceEntry`: one instance with its node and every check that
//! decides its health (`/v1/health/service`, `/v1/health/connect`,
//! prepared query execute).

use proconsul_shared::state::{HealthCheck, Node, ServiceInstance};

use super::{write_health_check, write_node, write_node_service};
use crate::api::json::JsonWriter;

/// Writes `{"Node":…,"Service":…,"Checks":[…]}`.
pub fn write_service_entry(w: &mut JsonWriter<'_>, node: &Node, instance: &ServiceInstance, checks: &[&HealthCheck]) {
    w.begin_object();
    w.key("Node");
    write_node(w, node);
    w.key("Service");
    write_node_service(w, instance);
    w.key("Checks");
    w.begin_array();
    for check in checks {
        write_health_check(w, check);
    }
    w.end_array();
    w.end_object();
}
