//! User events (HTTP.md §7): `PUT /v1/event/fire/<name>` and
//! `GET /v1/event/list`.
//!
//! A fired event is a replicated write ([`Command::EventFire`]); every
//! agent lists the recent events whose node/service/tag filters match
//! itself ([`agent_filter`]), newest last. The list's `X-Consul-Index` is
//! Consul's: the newest listed event's UUID folded to 64 bits
//! ([`uuid::uuid_index`]), 1 when nothing is listed; it is not monotonic,
//! so a blocking list waits while the index *equals* the client's, parked
//! on [`WatchItem::Events`](crate::blocking::WatchItem) so only a new event
//! wakes it.
//!
//! [`Command::EventFire`]: proconsul_shared::Command::EventFire

pub mod agent_filter;
mod fire;
mod list;
mod render;
pub mod uuid;

pub use fire::fire;
pub use list::list;
pub use render::render_fired;

#[cfg(test)]
mod tests;
