"""What a training run reports while it runs: a progress bar (rich), a metrics table (TSV, one
row per epoch and network) and TensorBoard scalars when ``tensorboard`` is installed."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

LOGGER = logging.getLogger(__name__)
COLUMNS = (
    'network',
    'epoch',
    'iteration',
    'seconds',
    'loss',
    'dice_loss',
    'vae_l2',
    'vae_kl',
    'vae_l2_kl',
    'val_dice',
    'best_val_dice',
)


class MetricsLog:
    """Appends rows to ``metrics.tsv`` (a resumed run continues the same file) and mirrors them
    to TensorBoard under ``tensorboard/`` when available. Inactive on ranks other than 0."""

    def __init__(self, folder: Path | None):
        self.path = None if folder is None else folder / 'metrics.tsv'
        self.writer = None
        if folder is None:
            return
        folder.mkdir(parents=True, exist_ok=True)
        if not self.path.is_file():
            self.path.write_text('\t'.join(COLUMNS) + '\n')
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            LOGGER.debug('tensorboard not installed: metrics go to %s only', self.path)
        else:
            self.writer = SummaryWriter(str(folder / 'tensorboard'))

    def add(self, row: dict) -> None:
        if self.path is None:
            return
        with self.path.open('a', newline='') as handle:
            writer = csv.writer(handle, delimiter='\t', lineterminator='\n')
            writer.writerow([_cell(row.get(column)) for column in COLUMNS])
        if self.writer is not None:
            for column in COLUMNS[4:]:
                if isinstance(row.get(column), float):
                    self.writer.add_scalar(
                        f'{row["network"]}/{column}', row[column], row['iteration']
                    )
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _cell(value) -> str:
    if value is None:
        return 'n/a'
    return f'{value:.6g}' if isinstance(value, float) else str(value)


def progress_bar(enabled: bool) -> Progress:
    """One bar per network: iterations, time, last loss and validation Dice."""
    return Progress(
        TextColumn('{task.description}'),
        BarColumn(),
        TextColumn('{task.completed}/{task.total} it'),
        TimeElapsedColumn(),
        TextColumn('{task.fields[status]}'),
        disable=not enabled,
        transient=False,
    )
