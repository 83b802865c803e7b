//! `proconsul-loadtest`: load generator for Proconsul and its peers.
//!
//! Every measured figure is meant to be compared with a peer measured in
//! the same session, per server CPU-core: requests answered divided by the
//! CPU-seconds of the server's whole process tree (`utime + stime` from
//! `/proc`, read before and after the measured window).
//!
//! Sub-commands: `http` (keep-alive GET load over epoll), `dns` (UDP with
//! `sendmmsg`/`recvmmsg`, closed loop or fixed rate), `prepare-kv` and
//! `prepare-catalog` (write the data the loads read), `watch` (many parked
//! blocking queries: memory per query, idle CPU, fan-out of one write),
//! `put`, `visibility` and `failover` (cluster writes against Proconsul or
//! etcd: throughput, write-to-client visibility, leader-kill recovery). See
//! docs/BENCHMARKS.md for the procedures.

mod cli;
mod cpu;
mod dns;
mod epoll;
mod http;
mod input_file;
mod latency;
mod limits;
mod machine;
mod measure;
mod phase;
mod report;
mod watch;
mod watch_conn;
mod watch_rss;
mod watch_rx_time;
mod write;

use clap::Parser;

use crate::cli::{Cli, Command};

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Http(args) => http::run::run(args),
        Command::Dns(args) => dns::run::run(args),
        Command::PrepareKv(args) => http::prepare_kv::run(args),
        Command::PrepareCatalog(args) => http::prepare_catalog::run(args),
        Command::Watch(args) => watch::run(args),
        Command::Put(args) => write::put::run(args),
        Command::Visibility(args) => write::visibility::run(args),
        Command::Failover(args) => write::failover::run(args),
        Command::CheckFlip(args) => write::check_flip::run(args),
    };
    if let Err(e) = result {
        eprintln!("proconsul-loadtest: {e:#}");
        std::process::exit(1);
    }
}
