// The page's entry: renders the web client into the page's <main>.

import { render } from "hono/jsx/dom";
import { App } from "./app/app.js";

render(<App />, document.getElementById("app")!);
