//! The Cloudflare Worker (feature `worker`). A first step: the router and `GET /health`.
use worker::{event, Context, Env, Request, Response, Result, Router};

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    Router::new()
        .get("/health", |_, _| {
            Response::from_json(&serde_json::json!({ "ok": true }))
        })
        .run(req, env)
        .await
}
