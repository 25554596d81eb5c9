//! `models`: the endpoints the key can submit to.

use crate::commands::Ctx;
use crate::exit::Failure;
use crate::output::table;

/// Lists the endpoints.
pub async fn run(ctx: &mut Ctx) -> Result<(), Failure> {
    let client = ctx.client().await?;
    let models = client.models().await?;
    let out = ctx.out;
    if out.json {
        out.json_value(&models);
        return Ok(());
    }
    if models.is_empty() {
        out.note("no endpoints are available to this key");
        return Ok(());
    }
    let mut rows = vec![vec![
        "ENDPOINT".to_owned(),
        "TITLE".to_owned(),
        "DESCRIPTION".to_owned(),
    ]];
    for m in &models {
        rows.push(vec![
            m.endpoint_id
                .clone()
                .unwrap_or_else(|| format!("{}/{}", m.model_id, m.capability)),
            m.title.clone().unwrap_or_default(),
            m.description.clone().unwrap_or_default(),
        ]);
    }
    for line in table(&rows) {
        out.line(line);
    }
    Ok(())
}
