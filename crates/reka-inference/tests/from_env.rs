//! `Client::from_env` without a key is a configuration error at once, not
//! a 401 on the first call. (Its own test binary: it changes the
//! environment of the process.)

use reka_inference::{Client, Error};

#[test]
fn a_missing_key_is_a_config_error() {
    // SAFETY: this test binary has no other thread reading the environment.
    unsafe {
        std::env::remove_var("REKA_API_KEY");
    }
    assert!(matches!(Client::from_env(), Err(Error::Config(_))));
    // SAFETY: as above.
    unsafe {
        std::env::set_var("REKA_API_KEY", "");
    }
    assert!(matches!(Client::from_env(), Err(Error::Config(_))));
    // SAFETY: as above.
    unsafe {
        std::env::set_var("REKA_API_KEY", "sk-present");
    }
    let client = Client::from_env().unwrap();
    assert!(!format!("{client:?}").contains("sk-present"));
}
