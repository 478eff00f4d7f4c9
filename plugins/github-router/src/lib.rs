//! `github-router`: routes GitHub webhooks by event kind, branch and repository.
//!
//! GitHub names the kind in the `X-GitHub-Event` header; the payload carries
//! the repository and, for pushes, the ref. Rules, in order:
//! - `ping` is dropped (GitHub sends it once when a hook is created).
//! - `push` to `refs/heads/<branch>` (config `branch`, default `main`) goes to
//!   `deploys`, priority 8; other pushes go to `default`, priority 3.
//! - `issues` and `issue_comment` go to `triage`, priority 4.
//! - `pull_request` and `pull_request_review` go to `reviews`, priority 6.
//! - anything else goes to `default`, priority 2.
//!
//! Every verdict sets the ordering key to the repository's full name, so one
//! repository's events stay in order where a destination asks for FIFO.
//!
//! Config (destination names; each may list several, `|`-separated; a rule
//! whose key is set to an empty string drops its events):
//! `deploys` (default `deploys`), `triage` (default `triage`), `reviews`
//! (default `reviews`), `default` (unset: keep the topic's routes),
//! `branch` (default `main`), `repos` (optional comma-separated allow list of
//! `owner/name`; other repositories are dropped).

use switchyard_sdk::{Config, Event, Plugin, Verdict};

/// The rules' destinations and filters.
pub struct GithubRouter {
    deploys: Vec<String>,
    triage: Vec<String>,
    reviews: Vec<String>,
    default: Option<Vec<String>>,
    branch_ref: String,
    repos: Vec<String>,
}

fn destinations(raw: &str) -> Vec<String> {
    raw.split('|')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

impl GithubRouter {
    fn to(&self, dest: Option<&Vec<String>>, priority: u8) -> Verdict {
        match dest {
            Some(d) => Verdict::route(d.iter().cloned()).priority(priority),
            None => Verdict::keep().priority(priority),
        }
    }
}

impl Plugin for GithubRouter {
    fn init(config: &Config) -> Result<Self, String> {
        config.deny_unknown(&["deploys", "triage", "reviews", "default", "branch", "repos"])?;
        Ok(Self {
            deploys: destinations(config.get("deploys").unwrap_or("deploys")),
            triage: destinations(config.get("triage").unwrap_or("triage")),
            reviews: destinations(config.get("reviews").unwrap_or("reviews")),
            default: config.get("default").map(destinations),
            branch_ref: format!("refs/heads/{}", config.get("branch").unwrap_or("main")),
            repos: config.list("repos"),
        })
    }

    fn handle(&self, event: &Event) -> Result<Verdict, String> {
        let kind = event
            .header("x-github-event")
            .ok_or("no X-GitHub-Event header: not a GitHub webhook")?;
        let repo = event.json_str("/repository/full_name");
        if !self.repos.is_empty()
            && !repo
                .as_deref()
                .is_some_and(|r| self.repos.iter().any(|allowed| allowed == r))
        {
            return Ok(Verdict::drop_event());
        }
        let verdict = match kind {
            "ping" => return Ok(Verdict::drop_event()),
            "push" if event.json_str("/ref").as_deref() == Some(self.branch_ref.as_str()) => {
                self.to(Some(&self.deploys), 8)
            }
            "push" => self.to(self.default.as_ref(), 3),
            "issues" | "issue_comment" => self.to(Some(&self.triage), 4),
            "pull_request" | "pull_request_review" => self.to(Some(&self.reviews), 6),
            _ => self.to(self.default.as_ref(), 2),
        };
        Ok(match repo {
            Some(r) => verdict.ordering_key(r),
            None => verdict,
        })
    }
}

switchyard_sdk::export!(GithubRouter);

#[cfg(test)]
mod tests {
    use super::*;

    fn plugin(extra: &[(&str, &str)]) -> GithubRouter {
        let mut pairs = vec![("default", "archive")];
        pairs.extend_from_slice(extra);
        GithubRouter::init(&pairs.into_iter().collect()).expect("valid config")
    }

    fn hook(kind: &str, body: &str) -> Event<'static> {
        Event::new("github", body).with_header("X-GitHub-Event", kind)
    }

    fn routes(v: &Verdict) -> Vec<&str> {
        v.get_routes()
            .unwrap_or_default()
            .iter()
            .map(String::as_str)
            .collect()
    }

    const REPO: &str = r#""repository":{"full_name":"acme/api"}"#;

    #[test]
    fn push_to_main_deploys_urgently() {
        let v = plugin(&[]).handle(&hook(
            "push",
            &format!(r#"{{"ref":"refs/heads/main",{REPO}}}"#),
        ));
        let v = v.expect("ok");
        assert_eq!(routes(&v), ["deploys"]);
        assert_eq!(v.get_priority(), Some(8));
        assert_eq!(v.get_ordering_key(), Some("acme/api"));
    }

    #[test]
    fn push_elsewhere_goes_to_default() {
        let v = plugin(&[]).handle(&hook(
            "push",
            &format!(r#"{{"ref":"refs/heads/dev",{REPO}}}"#),
        ));
        assert_eq!(routes(&v.expect("ok")), ["archive"]);
    }

    #[test]
    fn issues_go_to_triage() {
        let v = plugin(&[])
            .handle(&hook("issues", &format!("{{{REPO}}}")))
            .expect("ok");
        assert_eq!(routes(&v), ["triage"]);
        assert_eq!(v.get_priority(), Some(4));
    }

    #[test]
    fn ping_and_foreign_repos_are_dropped() {
        let v = plugin(&[]).handle(&hook("ping", "{}")).expect("ok");
        assert_eq!(v.get_routes(), Some(&[][..]));
        let p = plugin(&[("repos", "acme/web")]);
        let v = p
            .handle(&hook("issues", &format!("{{{REPO}}}")))
            .expect("ok");
        assert_eq!(v.get_routes(), Some(&[][..]));
    }

    #[test]
    fn non_github_event_is_an_error() {
        assert!(plugin(&[]).handle(&Event::new("github", "{}")).is_err());
    }
}
