/** The page's files as the server holds them (read once at start-up by sources/web-assets.ts). */

export interface WebAsset {
  body: Buffer;
  contentType: string;
}

export interface WebAssets {
  /** The page's HTML. */
  index: string;
  /** Files served under /assets/, by name. */
  files: ReadonlyMap<string, WebAsset>;
}
