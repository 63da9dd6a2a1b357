"""audioprobe.pretrain: BYOL-A pretraining of the domain models (pools -> training -> checkpoints).

Modules: :mod:`.recipe` (domains and the shipped recipe, no torch import), :mod:`.data` (pool
selection and log-mel crops), :mod:`.augment` (batched BYOL-A augmentations), :mod:`.config`
(architectures and the run's configuration), :mod:`.byol` (the BYOL learner: networks, loss,
step, optimiser), :mod:`.train` (the loop, data-parallel setup, checkpoint and training state),
:mod:`.shipped` (the nine shipped models), :mod:`.cli` (``audioprobe pretrain``,
``audioprobe pretrain-shipped``). The trained checkpoints live in ``audioprobe.models``'
``weights`` folder (:data:`audioprobe.models.specs.WEIGHTS_DIR`), where the probed network is loaded.
"""
