"""The ``esper`` entry point of esper-policies: registers the heuristic, random, noop and PPO policies.

Factories are lazy references, so building the catalog (``esper plugins``, ``esper --help``)
imports nothing beyond this module and the contracts, and never torch.
"""

from __future__ import annotations

import click

from esper_core.contracts.specs import GeneratorSpec, PolicySpec, TrainingOption
from esper_core.lazy import lazy
from esper_core.markers import hookimpl

# The defaults repeat PPOConfig's and IQLConfig's for `esper run --help` (importing the configs
# here would load more than the contracts); test_plugin checks that they agree.
PPO_TRAINING_OPTIONS = (
    TrainingOption(name="rounds", type=int, default=20, extends_on_resume=True,
                   help="training rounds (PPO updates)"),
    TrainingOption(name="envs", type=int, default=4, help="environments trained side by side"),
    TrainingOption(name="episode_length", type=int,
                   help="epochs per training episode (default: --epochs)"),
    TrainingOption(name="workers", type=bool, default=False,
                   help="one worker process per environment (CPU)"),
    TrainingOption(name="bc_dataset", type=str,
                   help="behaviour-clone these `esper collect` datasets before the first round "
                        "(comma-separate several)"),
)
IQL_TRAINING_OPTIONS = (
    TrainingOption(name="dataset", type=str,
                   help="episode dataset directory from `esper collect` (comma-separate several)"),
)


@hookimpl
def esper_register_policies() -> list[PolicySpec]:
    return [
        PolicySpec(
            name="heuristic",
            factory=lazy("esper_policies.heuristic:HeuristicPolicy.from_context"),
            read_options=lazy("esper_policies.heuristic_config:read_heuristic_options"),
            roles=("default", "comparison"),
            description="germinate on a smoothed plateau, cull stale or harmful seeds, "
                        "fossilize contributing ones, rotate blueprints with cull penalties",
        ),
        PolicySpec(
            name="random",
            factory=lazy("esper_policies.random_policy:RandomPolicy.from_context"),
            roles=("comparison",),
            description="uniformly random over the actions the mask allows (seeded)",
        ),
        PolicySpec(
            name="noop",
            factory=lazy("esper_policies.noop:NoopPolicy.from_context"),
            roles=("baseline", "comparison"),
            description="always wait: the static host baseline",
        ),
        PolicySpec(
            name="ppo",
            factory=lazy("esper_policies.checkpoint_policy:ppo_from_context"),
            read_options=lazy("esper_policies.checkpoint_policy:read_ppo_options"),
            trainer=lazy("esper_policies.ppo.trainer:PPOTrainer.from_context"),
            training_options=PPO_TRAINING_OPTIONS,
            description="learned actor-critic (masked factored heads, MLP or LSTM) trained with PPO on "
                        "vectorised environments; acts from --policy-checkpoint",
        ),
        PolicySpec(
            name="iql",
            factory=lazy("esper_policies.checkpoint_policy:iql_from_context"),
            read_options=lazy("esper_policies.checkpoint_policy:read_iql_options"),
            trainer=lazy("esper_policies.iql.trainer:IQLTrainer.from_context"),
            training_options=IQL_TRAINING_OPTIONS,
            description="actor-critic learned offline with implicit Q-learning from `esper collect` "
                        "datasets (--dataset DIR); acts from --policy-checkpoint",
        ),
    ]


@hookimpl
def esper_register_generators() -> list[GeneratorSpec]:
    return [
        GeneratorSpec(
            name="architect",
            factory=lazy("esper_policies.architect.generator:architect"),
            description="learned blueprint generator: GRU (or transformer) decoder pre-trained on the "
                        "catalog's token forms, REINFORCE with a moving baseline, entropy bonus and a "
                        "task curriculum",
        ),
    ]


@hookimpl
def esper_add_commands(cli: click.Group) -> None:
    from esper_policies.offline.commands import collect_command

    cli.add_command(collect_command)
