//! Messages on the control/data-plane socket.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::agent_info::AgentInfo;
use crate::command::{Command, CommandResult};

/// First frame of every connection, from the data plane.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Hello {
    /// The replication channel. `launch_fingerprint` identifies the listen
    /// configuration the data plane was started with: a control plane whose
    /// configuration differs asks it to shut down and starts a fresh one.
    Attach { pid: u32, launch_fingerprint: String },
    /// A request channel for one data-plane core.
    Requests { core: u32 },
}

/// Control plane → data plane on the replication channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ToDataplane {
    /// Carries the ring memfd. `epoch` identifies this control-plane run.
    Attached { epoch: u64, agent: Box<AgentInfo> },
    /// Carries a snapshot memfd; read the ring from the position in its header.
    Snapshot { index: u64 },
    /// Who leads, and the raft voters (`ip:port`).
    Cluster(ClusterStatus),
    /// Stop serving and exit.
    Shutdown,
}

/// Data plane → control plane on the replication channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FromDataplane {
    /// The reader was lapped or found a bad record: send a fresh snapshot.
    NeedSnapshot { reason: String },
    /// The replica applied this index (lets the control plane log lag).
    Applied { index: u64 },
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterStatus {
    /// `ip:port` of the leader's server RPC address, if one is known.
    pub leader: Option<String>,
    /// `ip:port` of every raft voter.
    pub peers: Vec<String>,
}

/// A request from a data-plane core.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlRequest {
    pub id: u64,
    pub op: ControlOp,
}

#[allow(clippy::large_enum_variant)] // follows Command's size
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ControlOp {
    /// A replicated write. Answered once applied (and published).
    Write(Command),
    /// `PUT /v1/agent/leave`: answer, then shut the agent down.
    Leave,
    /// The `Stats` section of `/v1/agent/self`.
    Stats,
    /// An HTTP request the control plane answers itself: agent endpoints
    /// over agent-local state (services, checks, maintenance, reload,
    /// members) and catalog writes. Answered with [`ControlReply::Http`].
    Http(HttpCall),
    /// A `?consistent` read's barrier: the control plane confirms with a
    /// quorum that the leader still leads (raft read index), waits until its
    /// own state has applied that index, and answers
    /// [`ControlReply::ReadIndex`]. The data plane then serves the read from
    /// a view at or past that index. Fails with `500 No cluster leader`
    /// without a leader or quorum.
    ReadBarrier,
}

/// A whole HTTP request, as the data plane parsed it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpCall {
    /// `GET`, `PUT`, ...
    pub method: String,
    /// Percent-decoded path, e.g. `/v1/agent/service/register`.
    pub path: String,
    /// The raw query string without `?` (still percent-encoded).
    pub query: String,
    pub body: Vec<u8>,
    /// `X-Consul-Token`, `Authorization: Bearer`, or `?token=`.
    pub token: Option<String>,
}

/// The control plane's whole answer to an [`HttpCall`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpAnswer {
    pub status: u16,
    /// `Content-Type`; empty for an empty body.
    pub content_type: String,
    pub body: Vec<u8>,
    /// Extra headers (`X-Consul-ContentHash`, `X-Consul-Index`, ...).
    pub headers: Vec<(String, String)>,
    /// The raft index of a write the answer depends on: the data plane
    /// answers once its replica has applied it (read-your-writes). 0 = now.
    pub wait_index: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlResponse {
    pub id: u64,
    pub result: Result<ControlReply, ControlError>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ControlReply {
    /// The write was applied at `index`; the data plane answers once its
    /// replica has reached it.
    Written {
        index: u64,
        result: CommandResult,
    },
    Done,
    Stats(BTreeMap<String, BTreeMap<String, String>>),
    Http(HttpAnswer),
    /// The answer to [`ControlOp::ReadBarrier`]: the raft index a read must
    /// see to be linearizable (already applied by the control plane).
    ReadIndex(u64),
}

/// An error with the HTTP status and plain-text body a Consul client expects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlError {
    pub status: u16,
    pub message: String,
}

impl ControlError {
    pub fn no_leader() -> ControlError {
        ControlError {
            status: 500,
            message: "No cluster leader".into(),
        }
    }
}
