use super::*;

#[test]
fn passwords_are_redacted_in_every_form() {
    assert_eq!(
        redact_database_url("postgres://u:pw@h:5/d?sslmode=disable"),
        "postgres://u:***@h:5/d?sslmode=disable"
    );
    assert_eq!(
        redact_database_url("postgresql://h/d?user=u&password=pw"),
        "postgresql://h/d?user=u&password=***"
    );
    assert_eq!(redact_database_url("postgres://h/d"), "postgres://h/d");
    assert_eq!(
        redact_database_url("host=h password=pw user=u"),
        "host=h password=*** user=u"
    );
}

#[tokio::test]
async fn a_url_that_requires_tls_is_refused_without_its_password() {
    let e = PostgresJournal::connect(
        "postgres://u:topsecret@127.0.0.1:1/d?sslmode=require",
        "b",
        PostgresOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e:?}");
    let text = format!("{e} {e:?}");
    assert!(text.contains("sslmode=require"), "{text}");
    assert!(!text.contains("topsecret"), "{text}");
}

#[tokio::test]
async fn an_unreachable_database_is_a_journal_error_without_its_password() {
    let e = PostgresJournal::connect(
        "postgres://u:topsecret@127.0.0.1:1/d",
        "b",
        PostgresOptions::default()
            .retry_for(Duration::from_millis(100))
            .statement_timeout(Duration::from_secs(5)),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, Error::Journal(_)), "{e:?}");
    let text = format!("{e} {e:?}");
    assert!(!text.contains("topsecret"), "{text}");
    assert!(text.contains("***"), "{text}");
}
