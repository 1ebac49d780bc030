//! Routes: which connector delivers which démarche.
//!
//! A route takes the démarches of one commune (or all, `*`) whose form slug matches one of
//! its glob patterns, and names the connector that delivers them. Routes become bindings of
//! the connector's queue on the `demarches` topic exchange (routing key
//! `{commune}.{form}`), so RabbitMQ does most of the routing; a glob that is not a whole
//! topic word (`inscription-*`) binds as `*` and the gateway finishes the match.

use std::collections::BTreeSet;
use std::sync::Arc;

use aiguillage_bus::is_insee_code;

use crate::mapping::Mapping;

/// The commune side of a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommunePattern {
    /// Every commune (`*`).
    Any,
    /// One commune, by INSEE code.
    Code(String),
}

impl CommunePattern {
    /// Parses `*` or a 5-character INSEE code.
    ///
    /// # Errors
    ///
    /// A message naming the expected shape.
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw == "*" {
            Ok(Self::Any)
        } else if is_insee_code(raw) {
            Ok(Self::Code(raw.to_owned()))
        } else {
            Err(format!(
                "`{raw}` n'est pas un code INSEE de commune : écrivez ses 5 caractères entre guillemets (par exemple \"44043\" pour Clisson, \"2A004\" en Corse) ou \"*\" pour toutes les communes"
            ))
        }
    }

    fn matches(&self, commune: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Code(code) => code == commune,
        }
    }

    fn topic_word(&self) -> &str {
        match self {
            Self::Any => "*",
            Self::Code(code) => code,
        }
    }
}

/// The form side of a route: a glob over form slugs.
#[derive(Debug, Clone)]
pub struct FormPattern {
    raw: String,
    glob: glob::Pattern,
}

impl PartialEq for FormPattern {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}

impl FormPattern {
    /// Parses a glob (`*`, `?`, `[…]`) over form slugs.
    ///
    /// # Errors
    ///
    /// A message when the pattern is not a valid glob or can never match a slug.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let allowed = |c: char| {
            c.is_ascii_lowercase()
                || c.is_ascii_digit()
                || matches!(c, '-' | '_' | '*' | '?' | '[' | ']' | '!')
        };
        if raw.is_empty() || !raw.chars().all(allowed) {
            return Err(format!(
                "`{raw}` ne peut correspondre à aucun identifiant de formulaire : ils sont faits de lettres minuscules, de chiffres, de `-` et de `_` ; `*` remplace n'importe quelle partie (par exemple \"demande-acte-*\")"
            ));
        }
        let glob = glob::Pattern::new(raw)
            .map_err(|error| format!("`{raw}` n'est pas un motif valide : {error}"))?;
        Ok(Self {
            raw: raw.to_owned(),
            glob,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    fn matches(&self, form: &str) -> bool {
        self.glob.matches(form)
    }

    fn is_literal(&self) -> bool {
        !self.raw.contains(['*', '?', '['])
    }
}

/// One `[[routes]]` entry.
#[derive(Debug, Clone)]
pub struct Route {
    /// The commune(s) it takes.
    pub commune: CommunePattern,
    /// The forms it takes.
    pub forms: Vec<FormPattern>,
    /// The connector that delivers them.
    pub connector: String,
    /// The mapping that makes the connector's document (none: the whole envelope).
    pub mapping: Option<Arc<Mapping>>,
}

impl PartialEq for Route {
    fn eq(&self, other: &Self) -> bool {
        self.commune == other.commune
            && self.forms == other.forms
            && self.connector == other.connector
            && self.mapping.as_ref().map(|m| m.file()) == other.mapping.as_ref().map(|m| m.file())
    }
}

impl Route {
    /// True when this route takes démarche `form` of `commune`.
    pub fn matches(&self, commune: &str, form: &str) -> bool {
        self.commune.matches(commune) && self.forms.iter().any(|f| f.matches(form))
    }
}

/// All routes, in file order.
#[derive(Debug, Clone, Default)]
pub struct Router {
    routes: Vec<Route>,
}

/// What the router says about a démarche that reached a connector's queue.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision<'a> {
    /// This connector delivers it, under this route.
    Deliver(&'a Route),
    /// Other connectors' routes take it: the copy here came through a broad binding, or
    /// was queued before the route moved to them. `takers` lists them; it is empty when
    /// no route takes it and another connector sends it to the unrouted démarches.
    NotMine {
        /// The connectors whose routes take it.
        takers: Vec<&'a str>,
        /// This connector must pass its copy on to `takers`: the routing key disagrees with
        /// the body (a portal's mistake), so the broker gave copies by the key and the
        /// takers, chosen by the body, may hold none. Exactly one holder, the same one that
        /// would keep an unrouted copy, passes it on; a taker that got a copy by the key as
        /// well absorbs the duplicate by its envelope id.
        forward: bool,
    },
    /// No route of the gateway takes it: it belongs with the unrouted démarches.
    Unrouted,
}

impl Router {
    /// A router over `routes`.
    pub fn new(routes: Vec<Route>) -> Self {
        Self { routes }
    }

    /// Decides what connector `connector` does with démarche `form` of `commune`, whose copy
    /// the broker gave it under `routing_key` (the key the portal published it with).
    pub fn decide(
        &self,
        connector: &str,
        commune: &str,
        form: &str,
        routing_key: &str,
    ) -> Decision<'_> {
        if let Some(route) = self
            .routes
            .iter()
            .find(|r| r.connector == connector && r.matches(commune, form))
        {
            return Decision::Deliver(route);
        }
        // Which connectors hold a copy depends on the routing key, not on the body: when
        // they disagree (a portal's mistake), the key decides who acts for all holders.
        let (key_commune, key_form) = routing_key.split_once('.').unwrap_or((commune, form));
        let acts_for_holders = || {
            self.forwarder(key_commune, key_form)
                .is_none_or(|forwarder| forwarder == connector)
        };
        let takers = self.takers(commune, form);
        if !takers.is_empty() {
            let disagrees = key_commune != commune || key_form != form;
            let forward = disagrees && acts_for_holders();
            return Decision::NotMine { takers, forward };
        }
        // Several connectors may hold a copy through broad bindings: exactly one of them,
        // the first in file order, keeps it for the operator; the others drop theirs. A
        // copy that no route explains (a binding left by an older configuration) is kept
        // too: a duplicate in the unrouted queue is better than a démarche dropped.
        if acts_for_holders() {
            Decision::Unrouted
        } else {
            Decision::NotMine {
                takers: Vec::new(),
                forward: false,
            }
        }
    }

    /// The connectors whose routes take démarche `form` of `commune`, in file order (none:
    /// it is unrouted).
    pub fn takers(&self, commune: &str, form: &str) -> Vec<&str> {
        let mut takers: Vec<&str> = Vec::new();
        for route in self.routes.iter().filter(|r| r.matches(commune, form)) {
            if !takers.contains(&route.connector.as_str()) {
                takers.push(&route.connector);
            }
        }
        takers
    }

    /// The connector that sends a démarche no route takes to the unrouted queue: the first,
    /// in file order, whose bindings let the broker give it a copy of a message published
    /// under the routing key `{commune}.{form}`.
    fn forwarder(&self, commune: &str, form: &str) -> Option<&str> {
        self.routes
            .iter()
            .find(|route| {
                route.commune.matches(commune)
                    && route
                        .forms
                        .iter()
                        .any(|f| !f.is_literal() || f.as_str() == form)
            })
            .map(|route| route.connector.as_str())
    }

    /// The topic binding keys of a connector's queue.
    pub fn binding_keys(&self, connector: &str) -> BTreeSet<String> {
        let mut keys = BTreeSet::new();
        for route in self.routes.iter().filter(|r| r.connector == connector) {
            for form in &route.forms {
                let form_word = if form.is_literal() {
                    form.as_str()
                } else {
                    "*"
                };
                keys.insert(format!("{}.{form_word}", route.commune.topic_word()));
            }
        }
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(commune: &str, forms: &[&str], connector: &str) -> Route {
        Route {
            commune: CommunePattern::parse(commune).unwrap(),
            forms: forms
                .iter()
                .map(|f| FormPattern::parse(f).unwrap())
                .collect(),
            connector: connector.into(),
            mapping: None,
        }
    }

    #[test]
    fn literal_forms_bind_exactly_and_globs_bind_broadly() {
        let router = Router::new(vec![
            route("44043", &["demande-acte-naissance", "inscription-*"], "a"),
            route("*", &["*"], "b"),
        ]);
        let keys: Vec<_> = router.binding_keys("a").into_iter().collect();
        assert_eq!(keys, vec!["44043.*", "44043.demande-acte-naissance"]);
        let keys: Vec<_> = router.binding_keys("b").into_iter().collect();
        assert_eq!(keys, vec!["*.*"]);
    }

    #[test]
    fn decisions() {
        let router = Router::new(vec![
            route("44043", &["inscription-*"], "famille"),
            route("44043", &["piscine"], "sport"),
        ]);
        assert!(matches!(
            router.decide(
                "famille",
                "44043",
                "inscription-cantine",
                "44043.inscription-cantine"
            ),
            Decision::Deliver(_)
        ));
        assert_eq!(
            router.decide("famille", "44043", "piscine", "44043.piscine"),
            Decision::NotMine {
                takers: vec!["sport"],
                forward: false
            }
        );
        assert_eq!(
            router.decide("famille", "44043", "autre", "44043.autre"),
            Decision::Unrouted
        );
        // No route explains this copy (only a binding left by an older configuration could
        // have brought it): it is kept for the operator rather than dropped.
        assert_eq!(
            router.decide(
                "famille",
                "44190",
                "inscription-cantine",
                "44190.inscription-cantine"
            ),
            Decision::Unrouted
        );
    }

    #[test]
    fn exactly_one_connector_keeps_an_unrouted_copy() {
        let router = Router::new(vec![
            route("44043", &["piscine"], "sport"),
            route("44043", &["inscription-*"], "famille"),
            route("44043", &["demande-acte-*"], "etat-civil"),
        ]);
        // `sport` binds only `44043.piscine`: it never holds a copy of another form.
        assert_eq!(
            router.decide("sport", "44043", "permis", "44043.permis"),
            Decision::NotMine {
                takers: vec![],
                forward: false
            }
        );
        assert_eq!(
            router.decide("famille", "44043", "permis", "44043.permis"),
            Decision::Unrouted
        );
        assert_eq!(
            router.decide("etat-civil", "44043", "permis", "44043.permis"),
            Decision::NotMine {
                takers: vec![],
                forward: false
            }
        );
    }

    #[test]
    fn the_routing_key_decides_who_keeps_an_unrouted_copy_when_the_body_disagrees() {
        let router = Router::new(vec![
            route("44043", &["inscription-*"], "famille"),
            route("44043", &["demande-acte-*"], "etat-civil"),
        ]);
        // Published as `44043.permis`, the body says Gorges: both connectors bind
        // `44043.*` and hold a copy, and only the first keeps it.
        assert_eq!(
            router.decide("famille", "44064", "permis", "44043.permis"),
            Decision::Unrouted
        );
        assert_eq!(
            router.decide("etat-civil", "44064", "permis", "44043.permis"),
            Decision::NotMine {
                takers: vec![],
                forward: false
            }
        );
    }

    #[test]
    fn a_copy_whose_key_disagrees_with_its_body_is_passed_on_by_one_holder() {
        let router = Router::new(vec![
            route("44043", &["inscription-*"], "famille"),
            route("44043", &["demande-acte-*"], "etat-civil"),
            route("44064", &["permis-*"], "urbanisme-gorges"),
        ]);
        // Published as `44043.permis-de-construire`, the body says Gorges: `famille` and
        // `etat-civil` hold copies, `urbanisme-gorges` (bound to `44064.permis-*`) none.
        // The first holder passes its copy on, the other drops its own.
        assert_eq!(
            router.decide(
                "famille",
                "44064",
                "permis-de-construire",
                "44043.permis-de-construire"
            ),
            Decision::NotMine {
                takers: vec!["urbanisme-gorges"],
                forward: true
            }
        );
        assert_eq!(
            router.decide(
                "etat-civil",
                "44064",
                "permis-de-construire",
                "44043.permis-de-construire"
            ),
            Decision::NotMine {
                takers: vec!["urbanisme-gorges"],
                forward: false
            }
        );
        // Key and body agree: the taker has its own copy, nothing is passed on.
        assert_eq!(
            router.decide("famille", "44043", "permis-x", "44043.permis-x"),
            Decision::Unrouted
        );
        assert_eq!(
            router.decide(
                "famille",
                "44064",
                "permis-de-construire",
                "44064.permis-de-construire"
            ),
            Decision::NotMine {
                takers: vec!["urbanisme-gorges"],
                forward: false
            }
        );
    }

    #[test]
    fn bad_patterns_are_refused_with_a_hint() {
        assert!(FormPattern::parse("Demande")
            .unwrap_err()
            .contains("minuscules"));
        assert!(FormPattern::parse("a.b").is_err());
        assert!(FormPattern::parse("[a").is_err());
        assert!(CommunePattern::parse("Clisson")
            .unwrap_err()
            .contains("INSEE"));
    }
}
