/** Column separator of text tables. */
const GAP = '  ';

/**
 * A plain text table: a header row and rows, every column but the last padded to its widest
 * cell. Widths count UTF-16 code units, which is exact for ASCII and close enough otherwise.
 */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]?.length ?? 0)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, column) => (column === cells.length - 1 ? cell : cell.padEnd(widths[column] ?? 0)))
      .join(GAP)
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

/** Two columns, name and value, without a header row: for single objects such as stats. */
export function formatFields(fields: readonly (readonly [string, string])[]): string {
  const width = Math.max(0, ...fields.map(([name]) => name.length));
  return fields.map(([name, value]) => `${name.padEnd(width)}${GAP}${value}`).join('\n') + '\n';
}
