//! Many jobs followed together: sets that grow while read, and list sweeps.

mod growing;
mod list_sweeps;
