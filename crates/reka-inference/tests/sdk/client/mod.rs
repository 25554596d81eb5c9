//! The client as a user meets it: its surface, listing and models; and
//! the layout of its source.

mod layout;
mod listing;
mod surface;
