//! The client as a user meets it: its surface, listing and models.

mod listing;
mod surface;
