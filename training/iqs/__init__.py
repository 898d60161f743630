"""Train the IQS scorer: all-MiniLM-L6-v2 fine-tuned as a pairwise cross-encoder on CaR's expert pairs.

``python -m training iqs --out curation/models/iqs [--epochs 3 --seed 42 ...]``

Data: ``training/data/iqs/APE_{train,valid}_pairs.csv`` (src = instruction part, pos = expert-revised
response, neg = original text-davinci-003 response). Only train is learned from; valid chooses the
checkpoint. Both sides go through :func:`curation.textnorm.normalize_text` (the originals carry
JSON escapes that would otherwise give the label away).

Model: ``[CLS] prompt [SEP] response [SEP]`` -> MiniLM -> mean pooling (all tokens or the
response's) -> Linear(384, 1).
Loss: ``softplus(-(s_pos - s_neg))`` (Bradley-Terry / RankNet) over pairs that share the same
instruction. The word-embedding matrix stays frozen (it is 45% of the parameters and comes from the
package at run time), so only the six transformer layers, the position/type embeddings and the
head are exported, in fp16 (~21 MB).

After training the exported weights are loaded back through :class:`curation.raters.iqs.IQSScorer`
(the shipped inference path), the 0-5 calibration is fitted on the Alpaca pool, and valid metrics
are measured on that shipped scorer and written to ``metrics.json`` and the model card.

Modules, in the order a run uses them: ``cli`` (arguments, the run), ``data`` (pairs, the pool),
``length`` (the length-only model), ``model`` (encoder + head), ``batches`` (token ids, padding,
length buckets), ``fit`` (training loop, checkpoint choice), ``metrics`` (pairwise accuracies),
``export`` (weights, config, calibration files), ``shipped`` (calibration and metrics through the
shipped scorer), ``card`` (the model card README).
"""

from training.iqs.cli import add_arguments, main

__all__ = ["add_arguments", "main"]
