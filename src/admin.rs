//! `parlor account …`: account administration on the server's database,
//! whether the server is running or not (SQLite's WAL and busy timeout let
//! both use the file).

use crate::accounts::{http_date, AccountError, Accounts};
use crate::config::Config;
use crate::store::Store;

/// One `parlor account` action.
pub enum AccountAction {
    Create {
        name: String,
        email: Option<String>,
        password: String,
    },
    Passwd {
        name: String,
        password: String,
    },
    Delete {
        name: String,
    },
    List,
    Show {
        name: String,
    },
}

/// Runs `action` and returns what to print. Errors are messages for the
/// admin, naming the account.
pub async fn run(config: &Config, action: AccountAction) -> Result<String, String> {
    let store = Store::open(&config.server.data_dir)
        .await
        .map_err(|e| e.to_string())?;
    let output = perform(&store, config, action).await;
    store.close().await;
    output
}

async fn perform(store: &Store, config: &Config, action: AccountAction) -> Result<String, String> {
    let fold = |name: &str| config.server.casemapping.fold(name);
    match action {
        AccountAction::Create {
            name,
            email,
            password,
        } => {
            let accounts = accounts(store, config).await?;
            // The admin is not bound by `registration`, only by the rules
            // every account follows.
            match accounts.register(&name, email.as_deref(), &password).await {
                Ok(account) => Ok(format!("account {} created", account.name)),
                Err(error) => Err(format!("cannot create {name}: {error}")),
            }
        }
        AccountAction::Passwd { name, password } => {
            let accounts = accounts(store, config).await?;
            match accounts.change_password(&fold(&name), &password).await {
                Ok(()) => Ok(format!("password of {name} changed")),
                Err(AccountError::NoSuchAccount) => Err(format!("no account {name}")),
                Err(error) => Err(format!("cannot change the password of {name}: {error}")),
            }
        }
        AccountAction::Delete { name } => match store.delete_account(&fold(&name)).await {
            Ok(true) => Ok(format!("account {name} deleted")),
            Ok(false) => Err(format!("no account {name}")),
            Err(error) => Err(error.to_string()),
        },
        AccountAction::List => {
            let accounts = store.accounts().await.map_err(|e| e.to_string())?;
            let mut out = format!(
                "{:<30} {:<30} {:<29} nicks\n",
                "account", "email", "registered"
            );
            for account in &accounts {
                out.push_str(&format!(
                    "{:<30} {:<30} {:<29} {}\n",
                    account.name,
                    account.email.as_deref().unwrap_or("-"),
                    http_date(account.created_at),
                    account.nick_count
                ));
            }
            out.push_str(&format!("{} accounts", accounts.len()));
            Ok(out)
        }
        AccountAction::Show { name } => match store.account(&fold(&name)).await {
            Ok(Some(account)) => Ok(format!(
                "account:    {}\nemail:      {}\nregistered: {}\nnicks:      {}\nscram:      {}",
                account.name,
                account.email.as_deref().unwrap_or("-"),
                http_date(account.created_at),
                account.nicks.join(" "),
                if account.scram.is_some() {
                    "yes"
                } else {
                    "no (PLAIN only until the password is changed)"
                },
            )),
            Ok(None) => Err(format!("no account {name}")),
            Err(error) => Err(error.to_string()),
        },
    }
}

/// Hashing needs the decoys computed: off the runtime.
async fn accounts(store: &Store, config: &Config) -> Result<Accounts, String> {
    let (store, config) = (store.clone(), config.clone());
    tokio::task::spawn_blocking(move || Accounts::new(store, &config))
        .await
        .map_err(|e| e.to_string())
}
