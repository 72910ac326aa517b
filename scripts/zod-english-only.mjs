// An esbuild plugin shared by the CLI's and the web client's builds (build-cli.mjs, build-web.mjs).

import { dirname, join } from "node:path";

/**
 * zod's namespace re-exports its error messages in every language it has (a third of zod's size); neither
 * the CLI nor the web client ever switches zod's language, so only English, the default zod sets for itself, is bundled.
 */
export const zodEnglishOnly = {
  name: "zod-english-only",
  setup(plugin) {
    plugin.onResolve({ filter: /\/locales\/index\.js$/ }, ({ importer, resolveDir }) =>
      importer.includes("/node_modules/zod/")
        ? { path: join(resolveDir, "..", "locales", "index.js"), namespace: "zod-english-only" }
        : undefined,
    );
    plugin.onLoad({ filter: /.*/, namespace: "zod-english-only" }, ({ path }) => ({
      contents: `export { default as en } from ${JSON.stringify(join(dirname(path), "en.js"))};`,
      resolveDir: dirname(path),
    }));
  },
};
