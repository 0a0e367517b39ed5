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
    /// List the tokens a daemon's config admits (names, roles, hash
    /// prefixes) and whether the generated admin token is still accepted.
    #[command(
        after_help = "EXAMPLES:\n  gatehouse token list --config gatehouse.toml\n  kill -HUP $(pidof gatehouse)   # the daemon reads the config's tokens again"
    )]
    List {
        /// The daemon's config file.
        #[arg(long)]
        config: std::path::PathBuf,
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
        TokenCommand::List { config } => {
            let settings = gatehouse::server::Settings::load(&config)?;
            if settings.tokens.is_empty() {
                println!(
                    "{} lists no tokens: the daemon accepts only the admin token it generated on its first start",
                    config.display()
                );
                return Ok(EXIT_OK);
            }
            auth::Tokens::new(&settings.tokens)?;
            println!("{:<24} {:<9} sha256", "NAME", "ROLE");
            for t in &settings.tokens {
                println!(
                    "{:<24} {:<9} {}…",
                    t.name,
                    t.role.to_string(),
                    &t.sha256[..12]
                );
            }
            println!(
                "\nthe admin token generated on a first start is not accepted while the config lists tokens; after an edit, `kill -HUP` the daemon to reload them"
            );
            Ok(EXIT_OK)
        }
    }
}
