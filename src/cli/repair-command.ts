import { createInterface } from 'node:readline/promises';
import type { Command } from 'commander';
import type { TruncationPlan, TruncationReport } from '../offline/log-truncation.js';
import { parseNonNegativeInteger } from './arg-parsers.js';
import { CommandFailure, UsageError } from './exit-codes.js';
import { addOfflineOptions, addSnapshotDirOption, withOfflineDir, type OfflineCommandOptions } from './offline-options.js';
import { printJson, printText } from './output.js';

interface RepairCommandOptions extends OfflineCommandOptions {
  readonly truncateAt: number;
  readonly snapshotDir: string;
  readonly yes: boolean;
}

function planText(dataDir: string, plan: TruncationPlan): string {
  const cut = Math.max(0, plan.logEnd - plan.offset);
  const lines = [
    `repair of ${dataDir}: the log will end before offset ${plan.offset} (it ends before ${plan.logEnd} now: ${cut} record${cut === 1 ? '' : 's'} cut)`,
    `  ${plan.segment}: cut at byte ${plan.cutPosition}${plan.cutBytes > 0 ? ` (${plan.cutBytes} bytes after it are kept)` : ''}`,
  ];
  if (plan.removedSegments.length > 0) lines.push(`  segments removed whole: ${plan.removedSegments.join(', ')}`);
  if (plan.snapshots.length > 0) lines.push(`  snapshots above offset ${plan.offset} moved away: ${plan.snapshots.join(', ')}`);
  if (plan.epochs.length > 0) lines.push(`  epochs removed from the epoch history: ${plan.epochs.map((entry) => `${entry.epoch} (from offset ${entry.startOffset})`).join(', ')}`);
  return lines.join('\n') + '\n';
}

function reportToJson(dataDir: string, report: TruncationReport | undefined, plan: TruncationPlan): Record<string, unknown> {
  return {
    data_dir: dataDir,
    truncate_at: plan.offset,
    previous_next_offset: plan.logEnd,
    segment: plan.segment,
    cut_position: plan.cutPosition,
    cut_bytes: plan.cutBytes,
    removed_segments: plan.removedSegments,
    moved_snapshots: plan.snapshots,
    removed_epochs: plan.epochs.map((entry) => ({ epoch: entry.epoch, start_offset: entry.startOffset })),
    saved_to: report?.savedTo ?? null,
    changed: report !== undefined,
  };
}

/** Asks on the terminal; true only for an answer starting with y. */
async function confirm(question: string): Promise<boolean> {
  const readline = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y/i.test((await readline.question(question)).trim());
  } finally {
    readline.close();
  }
}

/** Registers `wald repair`: an explicit, offline cut of the log at an offset, keeping what it cuts. */
export function registerRepairCommand(program: Command): void {
  const command = program
    .command('repair')
    .summary('cut the log at an offset, keeping what is cut (offline)')
    .description(
      'Cut the log of a data directory so that it ends before --truncate-at (the next append gets that offset): the ' +
        'segment holding it is cut at the frame starting there, later segments and snapshots above it are moved into ' +
        '<data-dir>/repair-<time>/ with the cut bytes and a REPAIR.json. An offset inside a batch is refused. Asks for ' +
        'confirmation on a terminal; needs --yes otherwise. Takes the directory lock (refused while a server holds it).',
    )
    .requiredOption('--truncate-at <offset>', 'the first offset to cut: the log ends before it', parseNonNegativeInteger)
    .option('--yes', 'cut without asking', false);
  addSnapshotDirOption(addOfflineOptions(command)).action(async (options: RepairCommandOptions) => {
    const isTerminal = process.stdin.isTTY === true && process.stderr.isTTY === true;
    if (!options.yes && !isTerminal) throw new UsageError('repair cuts records: pass --yes to confirm (stdin is not a terminal to ask on)');
    const { applyTruncation, isNothingToCut, planTruncation } = await import('../offline/log-truncation.js');
    await withOfflineDir(options, false, false, async (dir) => {
      const plan = await planTruncation(dir.storage, dir.dir, options.truncateAt, options.snapshotDir);
      if (isNothingToCut(plan)) {
        if (options.json) printJson(reportToJson(options.dataDir, undefined, plan));
        else printText(`nothing to cut: the log in ${options.dataDir} ends before offset ${plan.offset} already\n`);
        return;
      }
      if (!options.json) printText(planText(options.dataDir, plan));
      if (!options.yes && !(await confirm('Cut? [y/N] '))) throw new CommandFailure('repair cancelled: nothing was changed');
      const report = applyTruncation(dir.storage, dir.dir, plan, Date.now());
      if (options.json) printJson(reportToJson(options.dataDir, report, plan));
      else printText(`repaired: the log ends before offset ${plan.offset}; what was cut is in ${report.savedTo}/ inside the data directory (REPAIR.json describes it)\n`);
    });
  });
}
