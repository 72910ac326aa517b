// The web client's top level.

export function App() {
  return <h1>Telepound</h1>;
}
