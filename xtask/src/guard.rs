//! Runs generator code behind a guard that turns a panic into an error.
//!
//! progenitor and typify `panic!`, `todo!` and `assert!` on constructs they
//! do not handle. The normaliser rewrites every such construct it knows of,
//! but a document written by someone else can always hold one more: the
//! guard makes that an error the caller can attribute (see
//! [`crate::generate`], which bisects to the operation or schema), never a
//! crash of the xtask.

use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe, PanicHookInfo};
use std::sync::Once;

thread_local! {
    /// `Some` while this thread runs guarded code: the hook writes the
    /// panic's message and place here instead of printing it.
    static CAPTURED: RefCell<Option<String>> = const { RefCell::new(None) };
}

static INSTALL_HOOK: Once = Once::new();

/// Wraps the process's panic hook once: panics of guarded code are
/// captured, every other panic (a failing test's, say) is reported as
/// before.
fn install_hook() {
    INSTALL_HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let captured = CAPTURED
                .try_with(|slot| match slot.try_borrow_mut() {
                    Ok(mut slot) => match slot.as_mut() {
                        Some(text) => {
                            *text = describe(info);
                            true
                        }
                        None => false,
                    },
                    Err(_) => false,
                })
                .unwrap_or(false);
            if !captured {
                previous(info);
            }
        }));
    });
}

fn describe(info: &PanicHookInfo<'_>) -> String {
    let payload = info.payload();
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned());
    // The first line is enough to recognise the panic; `todo!` messages
    // can carry a whole debug-printed schema.
    let first_line = message.lines().next().unwrap_or_default();
    match info.location() {
        Some(at) => format!("{first_line} (at {}:{})", shorten(at.file()), at.line()),
        None => first_line.to_owned(),
    }
}

/// `progenitor-impl-0.15.1/src/method.rs`, not the whole registry path.
fn shorten(file: &str) -> &str {
    let parts: Vec<(usize, &str)> = file.match_indices('/').collect();
    if parts.len() >= 3 {
        &file[parts[parts.len() - 3].0 + 1..]
    } else {
        file
    }
}

/// Runs `f`; a panic inside it becomes `Err` with the panic's message and
/// place, and prints nothing.
pub fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    install_hook();
    let outer = CAPTURED.with(|slot| slot.replace(Some(String::new())));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    let message = CAPTURED
        .with(|slot| slot.replace(outer))
        .unwrap_or_default();
    result.map_err(|_| {
        if message.is_empty() {
            "a panic without a message".to_owned()
        } else {
            message
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_error_with_its_message_and_place() {
        let err = guarded(|| -> u8 { panic!("boom {}", 7) }).unwrap_err();
        assert!(err.starts_with("boom 7 (at "), "{err}");
        assert!(err.contains("guard.rs:"), "{err}");
    }

    #[test]
    fn guards_nest_and_values_pass_through() {
        let outer = guarded(|| guarded(|| -> u8 { panic!("inner") }).map(|_| 1));
        assert!(matches!(outer, Ok(Err(ref e)) if e.starts_with("inner")));
        assert_eq!(guarded(|| 5), Ok(5));
    }
}
