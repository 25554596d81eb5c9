//! A server, a network and inputs that try to break the client: bounded bodies, deadlines, the key kept home, every fault at once, and property tests of every parser.

mod chaos;
mod contradictions;
mod key;
mod properties;
mod server;
