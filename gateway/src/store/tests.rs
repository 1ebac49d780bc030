use super::*;

/// Against the machine's PostgreSQL (`AIGUILLAGE_TEST_POSTGRES_URL`, else the local one the
/// end-to-end tests use too).
#[tokio::test]
async fn postgres_connections_plan_each_statement_with_its_values() {
    let url = std::env::var("AIGUILLAGE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let store = Store::open(&url, 2).await.expect("the local PostgreSQL");
    for _ in 0..3 {
        // Each pooled connection, not only the first.
        let mode: String = sqlx::query_scalar("SHOW plan_cache_mode")
            .fetch_one(store.pool())
            .await
            .expect("answers");
        assert_eq!(mode, "force_custom_plan");
    }
    store.close().await;
}

#[test]
fn groups_split_into_power_of_two_chunks() {
    let split = |mut left: usize| {
        let mut sizes = Vec::new();
        while left > 0 {
            let size = chunk_size(left).min(left);
            sizes.push(size);
            left -= size;
        }
        sizes
    };
    assert_eq!(split(1), [1]);
    assert_eq!(split(13), [8, 4, 1]);
    assert_eq!(split(256), [256]);
    assert_eq!(split(300), [256, 32, 8, 4]);
}

#[test]
fn placeholders_are_numbered_row_after_row() {
    let mut sql = String::new();
    push_placeholders(&mut sql, 1, 3, 1);
    assert_eq!(sql, "$1, $2, $3");
    let mut sql = String::new();
    push_placeholders(&mut sql, 1, 2, 3);
    assert_eq!(sql, "($1, $2, $3), ($4, $5, $6)");
}
