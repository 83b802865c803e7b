//! CPU metering: how many CPU-seconds the server's process tree, this
//! generator and the whole machine spent during a run.
//!
//! * [`proc_stat`]: parsers for `/proc/<pid>/stat` and `/proc/stat` (pure).
//! * [`tree`]: a process and all its descendants from a pid → ppid list (pure).
//! * [`usage`]: the figures of a run computed from two readings (pure).
//! * [`meter`]: reads `/proc` and `getrusage` (IO).

pub mod meter;
pub mod proc_stat;
pub mod tree;
pub mod usage;
