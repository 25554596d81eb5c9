//! One job: its lifecycle, in every dialect, under faults, with statuses nobody documented.

mod dialects;
mod faults;
mod lifecycle;
mod unknown_status;
