//! The `RPL_ISUPPORT` (005) tokens, derived from the configuration once.

use crate::config::Config;

/// Channel modes by CHANMODES class: lists, always-parameter,
/// parameter-when-set, flags.
pub const CHANMODES: &str = "beI,k,l,imnpst";
pub const USER_MODES: &str = "iowZ";
pub const CHANNEL_MODES: &str = "beIiklmnopstv";
/// Characters that start a channel name.
pub const CHANTYPES: &str = "#&";

pub fn tokens(config: &Config) -> Vec<String> {
    let l = &config.limits;
    let targets = l.targets_per_message;
    vec![
        "AWAYLEN=".to_owned() + &l.away_length.to_string(),
        format!("CASEMAPPING={}", config.server.casemapping.name()),
        format!("CHANLIMIT={CHANTYPES}:{}", l.channels_per_client),
        format!("CHANMODES={CHANMODES}"),
        format!("CHANNELLEN={}", l.channel_length),
        format!("CHANTYPES={CHANTYPES}"),
        format!("CHATHISTORY={}", config.history.chathistory_max),
        "ELIST=MNU".to_owned(),
        "EXCEPTS=e".to_owned(),
        "INVEX=I".to_owned(),
        format!("KICKLEN={}", l.kick_length),
        // Each list has its own limit, so they are advertised one by one.
        format!("MAXLIST=b:{0},e:{0},I:{0}", l.list_entries),
        format!("MAXTARGETS={targets}"),
        format!("MODES={}", l.modes_per_command),
        format!("MONITOR={}", l.monitor_entries),
        "MSGREFTYPES=msgid,timestamp".to_owned(),
        format!("NAMELEN={}", l.realname_length),
        format!("NETWORK={}", config.server.network),
        format!("NICKLEN={}", l.nick_length),
        "PREFIX=(ov)@+".to_owned(),
        "SAFELIST".to_owned(),
        "STATUSMSG=@+".to_owned(),
        format!(
            "TARGMAX=ISON:,JOIN:,KICK:{targets},LIST:,MONITOR:,NAMES:,NOTICE:{targets},PART:,PRIVMSG:{targets},WHOIS:{targets}"
        ),
        format!("TOPICLEN={}", l.topic_length),
        "USERLEN=18".to_owned(),
        "UTF8ONLY".to_owned(),
        "WHOX".to_owned(),
    ]
}
