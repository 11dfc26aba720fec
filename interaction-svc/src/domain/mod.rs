//! Pure types and rules of citizen interaction; no I/O.

pub mod ticket;

pub use ticket::{PageSize, PageToken, TicketId, TicketState};
