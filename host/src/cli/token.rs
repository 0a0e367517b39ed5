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
        /// reader, ci, operator, service (serving services: read configs,
        /// report canary observations) or admin.
        #[arg(long, value_parser = parse_role)]
        role: Role,
    },
}

const ROLES: [Role; 5] = [
    Role::Reader,
    Role::Ci,
    Role::Operator,
    Role::Service,
    Role::Admin,
];

fn parse_role(s: &str) -> Result<Role, String> {
    ROLES
        .into_iter()
        .find(|r| r.to_string() == s)
        .ok_or_else(|| {
            let names: Vec<String> = ROLES.iter().map(Role::to_string).collect();
            format!("{s:?} is not a role; use one of {}", names.join(", "))
        })
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
