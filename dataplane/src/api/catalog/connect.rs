//! `GET /v1/catalog/connect/<service>`: the Connect-capable instances of a
//! service (the `connect-proxy` instances whose destination it is and its
//! Connect-native instances), in the `CatalogService` shape, with the same
//! options and blocking as `/v1/catalog/service/<service>`.
//!
//! [`Selection`] is the switch the service reads (here and in `health`)
//! share: which instances of a name they return and which index governs.

use std::sync::Arc;

use imbl::OrdMap;
use proconsul_shared::state::{Catalog, CatalogKey, ServiceInstance};

use crate::api::{ApiRequest, Outcome};
use crate::blocking::WatchItem;
use crate::core::{LeaderStatus, View};

/// Which instances a service read selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    /// The instances registered under the name.
    Service,
    /// The Connect-capable instances for the name (proxies + native).
    Connect,
}

impl Selection {
    /// The selected instances of `name` (case-insensitive), by node then id.
    pub fn instances<'c>(
        self,
        catalog: &'c Catalog,
        name: &str,
    ) -> Option<&'c OrdMap<CatalogKey, Arc<ServiceInstance>>> {
        match self {
            Selection::Service => catalog.instances(name),
            Selection::Connect => catalog.connect_instances(name),
        }
    }

    /// What a blocked read of `name` (lower-cased) parks on.
    pub fn watch_item(self, name: String) -> WatchItem {
        match self {
            Selection::Service => WatchItem::Service(name),
            Selection::Connect => WatchItem::Connect(name),
        }
    }

    /// The index that governs the read.
    pub fn index(self, catalog: &Catalog, name: &str) -> u64 {
        match self {
            Selection::Service => catalog.service_index(name),
            Selection::Connect => catalog.connect_index(name),
        }
    }
}

/// Handles `GET /v1/catalog/connect/<name>` (`name` already decoded).
pub fn connect(req: &ApiRequest<'_>, name: &str, view: &View, leader: LeaderStatus) -> Outcome {
    super::service::select(req, name, view, leader, Selection::Connect)
}
