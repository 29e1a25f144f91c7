//! TEMPORARY placeholder until the est-client CLI lands.
#[derive(clap::Args)]
pub struct ClientArgs {
    #[arg(long)]
    url: String,
}

pub async fn run(args: ClientArgs) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    Err(format!("client not available yet ({})", args.url).into())
}
