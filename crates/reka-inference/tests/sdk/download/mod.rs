//! Output files fetched to disk.

mod files;
