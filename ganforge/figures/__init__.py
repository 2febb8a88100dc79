"""Pictures that explain one model or game (attention maps, latent traversals, BEGAN's convergence)."""
