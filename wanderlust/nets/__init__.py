"""Encoders and heads: MiniGrid (RIDE) and Atari (the SND seed's models A–D), and the actor-critic."""

from wanderlust.nets.policy import ActorCritic, PolicyOutput, build_policy

__all__ = ["ActorCritic", "PolicyOutput", "build_policy"]
