//! Edits of recorded state that need no provider (`flotilla state rm`, `state mv`) and the
//! check that a saved plan still applies to the state it was made against. The CLI only
//! reports what these return.

use flotilla_config::addr::{ResourceInstanceAddr, TargetAddr};
use flotilla_state::State;

use crate::Plan;

/// Why a saved plan no longer applies to `state`, if it does not: a state never written
/// (serial 0) has no lineage yet; any other difference of serial or lineage means the plan
/// was made against something else.
pub fn stale_reason(plan: &Plan, state: &State) -> Option<String> {
    let moved = plan.state_serial != state.serial;
    let other = state.serial > 0 && plan.prior_state.lineage != state.lineage;
    (moved || other).then(|| {
        if other && !moved {
            format!(
                "the plan was made against another state (lineage {}, state has {})",
                plan.prior_state.lineage, state.lineage
            )
        } else {
            format!(
                "plan made at serial {}, state is now at serial {}",
                plan.state_serial, state.serial
            )
        }
    })
}

/// Removes every instance `filters` match; returns what was removed (empty: nothing did).
pub fn remove(state: &mut State, filters: &[TargetAddr]) -> Vec<ResourceInstanceAddr> {
    let doomed: Vec<ResourceInstanceAddr> = state
        .resources
        .keys()
        .filter(|a| filters.iter().any(|f| f.contains(a)))
        .cloned()
        .collect();
    for a in &doomed {
        state.resources.remove(a);
    }
    doomed
}

/// Why a move cannot be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MoveError {
    /// No instance matches the source.
    Nothing,
    /// A destination is already in state.
    Exists(ResourceInstanceAddr),
}

/// Moves every instance under `from` to the same place under `to` (modules, resources or
/// instances, as a `moved` block would); returns the moves made. Nothing changes on error.
pub fn move_instances(
    state: &mut State,
    from: &TargetAddr,
    to: &TargetAddr,
) -> Result<Vec<(ResourceInstanceAddr, ResourceInstanceAddr)>, MoveError> {
    let moves: Vec<(ResourceInstanceAddr, ResourceInstanceAddr)> = state
        .resources
        .keys()
        .filter_map(|a| crate::moved_address(from, to, a).map(|n| (a.clone(), n)))
        .collect();
    if moves.is_empty() {
        return Err(MoveError::Nothing);
    }
    if let Some((_, clash)) = moves.iter().find(|(_, n)| state.resources.contains_key(n)) {
        return Err(MoveError::Exists(clash.clone()));
    }
    for (a, n) in &moves {
        if let Some(r) = state.resources.remove(a) {
            state.resources.insert(n.clone(), r);
        }
    }
    Ok(moves)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flotilla_state::ResourceInstanceState;

    fn with(addrs: &[&str]) -> State {
        let mut s = State::new();
        for a in addrs {
            s.resources.insert(
                a.parse().unwrap(),
                ResourceInstanceState {
                    provider: "provider.builtin".parse().unwrap(),
                    attributes: serde_json::json!({}),
                    sensitive: serde_json::Value::Bool(false),
                    dependencies: vec![],
                    create_before_destroy: false,
                    tainted: false,
                },
            );
        }
        s
    }

    #[test]
    fn moves_and_removals() {
        let mut s = with(&["module.old.builtin_data.x", "builtin_data.y"]);
        let moves = move_instances(
            &mut s,
            &"module.old".parse().unwrap(),
            &"module.new".parse().unwrap(),
        )
        .unwrap();
        assert_eq!(moves.len(), 1);
        assert!(
            s.resources
                .contains_key(&"module.new.builtin_data.x".parse().unwrap())
        );
        assert_eq!(
            move_instances(
                &mut s,
                &"module.gone".parse().unwrap(),
                &"module.x".parse().unwrap()
            ),
            Err(MoveError::Nothing)
        );
        assert_eq!(
            move_instances(
                &mut s,
                &"builtin_data.y".parse().unwrap(),
                &"module.new.builtin_data.x".parse().unwrap()
            ),
            Err(MoveError::Exists(
                "module.new.builtin_data.x".parse().unwrap()
            ))
        );
        let removed = remove(&mut s, &["builtin_data.y".parse().unwrap()]);
        assert_eq!(removed.len(), 1);
        assert!(remove(&mut s, &["builtin_data.z".parse().unwrap()]).is_empty());
    }

    #[test]
    fn a_plan_is_stale_when_the_state_moved_on_or_is_another() {
        let mut state = State::new();
        state.serial = 3;
        let plan = Plan {
            state_serial: 3,
            prior_state: state.clone(),
            ..Plan::default()
        };
        assert_eq!(stale_reason(&plan, &state), None);
        state.serial = 4;
        assert!(stale_reason(&plan, &state).unwrap().contains("serial 3"));
        let mut other = State::new();
        other.serial = 3;
        assert!(
            stale_reason(&plan, &other)
                .unwrap()
                .contains("another state")
        );
    }
}
