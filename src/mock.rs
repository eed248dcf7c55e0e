//! TEMPORARY placeholder, replaced by the real mock upstream.
use std::sync::Arc;
/// Counters.
#[derive(Debug, Default)]
pub struct MockStats {
    _n: u64,
}
/// Serve.
pub async fn serve(
    _listener: tokio::net::TcpListener,
    _stats: Arc<MockStats>,
    _shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    Ok(())
}
