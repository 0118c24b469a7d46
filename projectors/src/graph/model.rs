//! What a resource looks like in the graph, derived from its virtual tags alone (never its native
//! ones): a Resource node linked to its Tags (HAS_TAG), the Team(s) that own it (OWNED_BY), its
//! CostCenter (BELONGS_TO), its Project (PART_OF) and its Account (IN_ACCOUNT). Pure: the
//! projector folds events into a [`ResourceDoc`] (the same fold as the search document) and
//! writes the shape this module derives from it.
//!
//! Ownership. The `team` tag names the owning team. The `owner` tag names one too when its value is
//! a team (`platform`) or a team's mailbox (`platform-team@company.com`); a person's address names
//! no team. A resource whose tags name two different teams has conflicting ownership — the
//! question FinOps teams ask before a showback dispute.

use crate::search::doc::ResourceDoc;

/// Tag keys the graph turns into relationships (the taxonomy's canonical keys).
pub const TEAM: &str = "team";
pub const OWNER: &str = "owner";
pub const COST_CENTER: &str = "cost-center";
pub const PROJECT: &str = "project";

/// A resource's relationships, as its virtual tags imply them.
#[derive(Debug, Clone, PartialEq)]
pub struct Shape {
    /// (key, value, source, confidence), sorted by key.
    pub tags: Vec<(String, String, String, f64)>,
    /// (team, the tag that names it), at most one per tag.
    pub owners: Vec<(String, &'static str)>,
    pub cost_center: Option<String>,
    pub project: Option<String>,
    /// Its tags name more than one team.
    pub ownership_conflict: bool,
}

impl Shape {
    pub fn of(doc: &ResourceDoc) -> Self {
        let tag = |key: &str| doc.tags.iter().find(|t| t.key == key).map(|t| t.value.as_str());
        let mut owners = Vec::new();
        if let Some(team) = tag(TEAM) {
            owners.push((team.to_lowercase(), TEAM));
        }
        if let Some(team) = tag(OWNER).and_then(team_of_owner) {
            owners.push((team, OWNER));
        }
        let ownership_conflict = owners.windows(2).any(|w| w[0].0 != w[1].0);
        Self {
            tags: doc.tags.iter().map(|t| (t.key.clone(), t.value.clone(), t.source.clone(), t.confidence)).collect(),
            owners,
            cost_center: tag(COST_CENTER).map(str::to_owned),
            project: tag(PROJECT).map(str::to_owned),
            ownership_conflict,
        }
    }
}

/// The team an `owner` value names: a team's name, or the local part of a team mailbox
/// (`<team>-team@…`); None for a person's address.
pub fn team_of_owner(owner: &str) -> Option<String> {
    let owner = owner.trim().to_lowercase();
    match owner.split_once('@') {
        None if !owner.is_empty() => Some(owner),
        None => None,
        Some((local, _)) => local.strip_suffix("-team").filter(|t| !t.is_empty()).map(str::to_owned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::doc::DocTag;

    fn doc(tags: &[(&str, &str)]) -> ResourceDoc {
        let mut doc = ResourceDoc::new("acme", "r1".into());
        doc.tags = tags
            .iter()
            .map(|(k, v)| DocTag { key: (*k).into(), value: (*v).into(), source: "manual".into(), confidence: 1.0 })
            .collect();
        doc.tags.sort_by(|a, b| a.key.cmp(&b.key));
        doc
    }

    #[test]
    fn tags_become_relationships() {
        let shape = Shape::of(&doc(&[("team", "payments"), ("cost-center", "ENG-001"), ("project", "checkout"), ("env", "prod")]));
        assert_eq!(shape.owners, [("payments".to_owned(), TEAM)]);
        assert_eq!(shape.cost_center.as_deref(), Some("ENG-001"));
        assert_eq!(shape.project.as_deref(), Some("checkout"));
        assert_eq!(shape.tags.len(), 4, "every virtual tag is a HAS_TAG");
        assert!(!shape.ownership_conflict);
    }

    #[test]
    fn an_owner_names_a_team_only_when_it_is_one() {
        assert_eq!(team_of_owner("platform-team@company.com").as_deref(), Some("platform"));
        assert_eq!(team_of_owner("Data-Science").as_deref(), Some("data-science"));
        assert_eq!(team_of_owner("alice@company.com"), None, "a person is not a team");
        assert_eq!(team_of_owner("-team@company.com"), None);
        assert_eq!(team_of_owner(" "), None);
    }

    #[test]
    fn two_teams_named_is_a_conflict_and_the_same_team_twice_is_not() {
        let agreeing = Shape::of(&doc(&[("team", "platform"), ("owner", "platform-team@company.com")]));
        assert_eq!(agreeing.owners.len(), 2);
        assert!(!agreeing.ownership_conflict);
        let disputed = Shape::of(&doc(&[("team", "platform"), ("owner", "payments")]));
        assert!(disputed.ownership_conflict);
        let person = Shape::of(&doc(&[("team", "platform"), ("owner", "alice@company.com")]));
        assert_eq!(person.owners, [("platform".to_owned(), TEAM)]);
        assert!(!person.ownership_conflict);
        assert!(Shape::of(&doc(&[])).owners.is_empty());
    }
}
