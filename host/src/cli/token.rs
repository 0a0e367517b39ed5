//! `token new`: mint a token and the config entry that admits it.

use super::EXIT_OK;
use gatehouse::api::auth::{self, Role};

#[derive(clap::Subcommand)]
pub enum TokenCommand {
    /// Print a new random token and the `[[tokens]]` entry for the daemon's
    /// config (which holds only its sha256).
    New {
        /// A name for who uses it, shown in the audit log.
        #[arg(long)]
        name: String,
        /// reader, ci, operator or admin.
        #[arg(long, value_parser = parse_role)]
        role: Role,
    },
}

fn parse_role(s: &str) -> Result<Role, String> {
    match s {
        "reader" => Ok(Role::Reader),
        "ci" => Ok(Role::Ci),
        "operator" => Ok(Role::Operator),
        "admin" => Ok(Role::Admin),
        _ => Err(format!(
            "{s:?} is not a role; use reader, ci, operator or admin"
        )),
    }
}

pub fn run(cmd: TokenCommand) -> anyhow::Result<u8> {
    match cmd {
        TokenCommand::New { name, role } => {
            let token = auth::generate_token()
                .map_err(|e| anyhow::anyhow!("cannot generate a token: {e}"))?;
            let hash = hex::encode(auth::hash_token(&token));
            println!("token: {token}");
            println!(
                "\n# add to the daemon's config:\n[[tokens]]\nname = {name:?}\nrole = \"{role}\"\nsha256 = \"{hash}\""
            );
            Ok(EXIT_OK)
        }
    }
}
