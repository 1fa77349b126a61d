//! `[agents.NAME]`: who may use the agent API and the MCP server, with
//! which token, which tools, and (`[agents.NAME.oauth]`) which OAuth
//! client it is to l3map's token endpoint.

use std::collections::{BTreeMap, BTreeSet};

use toml::Spanned;

use super::doc::Doc;
use super::error::ConfigError;
use super::model::{Agent, AgentOauth, Ops, MCP_TOOLS};
use super::raw::{RawAgent, RawAgentOauth, RawOps};

impl Doc<'_> {
    /// `[ops.NAME]`: the ops console's users, each with a token of their
    /// own.
    pub(super) fn ops(
        &self,
        raw: BTreeMap<String, Spanned<RawOps>>,
    ) -> Result<BTreeMap<String, Ops>, ConfigError> {
        let mut out = BTreeMap::new();
        for (name, ops) in raw {
            let span = ops.span();
            let ops = ops.into_inner();
            let token = self.secret_source(
                &format!("ops.{name}"),
                "token",
                span,
                ops.token_env.as_ref(),
                ops.token_file.as_ref(),
            )?;
            out.insert(
                name,
                Ops {
                    token,
                    actions: ops.actions,
                },
            );
        }
        Ok(out)
    }

    pub(super) fn agents(
        &self,
        raw: BTreeMap<String, Spanned<RawAgent>>,
    ) -> Result<BTreeMap<String, Agent>, ConfigError> {
        let mut agents = BTreeMap::new();
        let mut client_ids = BTreeSet::new();
        for (name, agent) in raw {
            let span = agent.span();
            let agent = agent.into_inner();
            let token = self.secret_source(
                &format!("agents.{name}"),
                "token",
                span.clone(),
                agent.token_env.as_ref(),
                agent.token_file.as_ref(),
            )?;
            let tools = match agent.tools {
                None => None,
                Some(list) => Some(self.tools(&name, list.into_inner())?),
            };
            let oauth = match agent.oauth {
                None => None,
                Some(o) => {
                    let o = self.oauth(&name, o)?;
                    if !client_ids.insert(o.client_id.clone()) {
                        return Err(self.invalid(
                            span,
                            format!(
                                "`agents.{name}.oauth.client_id` {:?} is another agent's too; each agent needs its own",
                                o.client_id
                            ),
                        ));
                    }
                    Some(o)
                }
            };
            agents.insert(
                name,
                Agent {
                    token,
                    tools,
                    oauth,
                },
            );
        }
        Ok(agents)
    }

    fn tools(&self, name: &str, list: Vec<Spanned<String>>) -> Result<Vec<String>, ConfigError> {
        let mut tools = Vec::new();
        for t in list {
            if !MCP_TOOLS.contains(&t.get_ref().as_str()) {
                return Err(self.invalid(
                    t.span(),
                    format!(
                        "`agents.{name}.tools`: {:?} is not an MCP tool; the tools are {}",
                        t.get_ref(),
                        MCP_TOOLS.join(", ")
                    ),
                ));
            }
            tools.push(t.into_inner());
        }
        Ok(tools)
    }

    fn oauth(&self, name: &str, raw: Spanned<RawAgentOauth>) -> Result<AgentOauth, ConfigError> {
        let span = raw.span();
        let raw = raw.into_inner();
        let table = format!("agents.{name}.oauth");
        let id = raw.client_id.get_ref();
        if id.is_empty()
            || id.len() > 100
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(self.invalid(
                raw.client_id.span(),
                format!("`{table}.client_id`: 1 to 100 letters, digits, `-`, `_` or `.`"),
            ));
        }
        let client_secret = self.secret_source(
            &table,
            "client_secret",
            span,
            raw.client_secret_env.as_ref(),
            raw.client_secret_file.as_ref(),
        )?;
        let mut redirect_uris = Vec::new();
        for r in raw.redirect_uris {
            let ok = reqwest::Url::parse(r.get_ref()).ok().filter(|u| {
                let local = matches!(u.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
                u.fragment().is_none() && (u.scheme() == "https" || (u.scheme() == "http" && local))
            });
            if ok.is_none() {
                return Err(self.invalid(
                    r.span(),
                    format!(
                        "`{table}.redirect_uris`: {:?} is not an https URL without a fragment (http only on 127.0.0.1 or localhost)",
                        r.get_ref()
                    ),
                ));
            }
            redirect_uris.push(r.into_inner());
        }
        Ok(AgentOauth {
            client_id: raw.client_id.into_inner(),
            client_secret,
            redirect_uris,
        })
    }
}
