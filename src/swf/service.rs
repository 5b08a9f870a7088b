//! The SWF service the clients believe they talk to (`[service]`): its region, account and
//! partition, which name every resource ARN, and the hosts they may sign for.

use std::time::Duration;

/// `[service]`, validated.
#[derive(Debug, Clone)]
pub struct Service {
    pub region: String,
    pub account_id: String,
    pub partition: String,
    pub max_clock_skew: Duration,
    /// The hosts (`name` or `name:port`, lowercase) clients may sign for; empty: any.
    pub hosts: Vec<String>,
}

impl Service {
    /// `arn:<partition>:swf:<region>:<account>:/domain/<name>`.
    pub fn domain_arn(&self, domain: &str) -> String {
        format!(
            "arn:{}:swf:{}:{}:/domain/{domain}",
            self.partition, self.region, self.account_id
        )
    }
}
