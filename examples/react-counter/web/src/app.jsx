// A React page on `@rivetkit/react`, unchanged, against the demo `counter` of `footlights serve`:
// `useActor` opens a realtime connection, `useEvent("newCount")` shows every change whoever
// made it, and the button calls the `increment` action over that connection.
//
// Open `index.html?endpoint=http://127.0.0.1:6420&key=room-1`: `endpoint` is the server (this
// default when left out), `key` the counter's key ("react" when left out).
import { createRivetKit } from "@rivetkit/react";
import { useEffect, useState } from "react";
import { createRoot } from "react-dom/client";

const query = new URLSearchParams(location.search);
const endpoint = query.get("endpoint") ?? "http://127.0.0.1:6420";
const key = query.get("key") ?? "react";

// One client for the page; `useActor` shares a connection between the components that ask for
// the same actor.
const { useActor } = createRivetKit(endpoint);

function Counter() {
  const counter = useActor({ name: "counter", key: [key] });
  const [count, setCount] = useState(null);
  const [error, setError] = useState(null);

  // Every increment, from this page or anyone else, arrives as `newCount(count)`.
  counter.useEvent("newCount", (n) => setCount(n));

  // The count so far, read once the connection is up (and again after a reconnect). The answer
  // and the events come in the order the actor produced them, so the last one set is current.
  useEffect(() => {
    if (!counter.isConnected || !counter.connection) return;
    let live = true;
    counter.connection.getCount().then(
      (n) => live && setCount(n),
      (e) => live && setError(e),
    );
    return () => {
      live = false;
    };
  }, [counter.connection, counter.isConnected]);

  // For the end-to-end test and the stylesheet: the connection status on <body>.
  useEffect(() => {
    document.body.dataset.status = counter.connStatus;
  }, [counter.connStatus]);

  const increment = () => {
    counter.connection?.increment(1).catch(setError);
  };
  const problem = error ?? counter.error;

  return (
    <main>
      <h1>
        counter <code>{key}</code>
      </h1>
      <p id="count" className="count">
        {count ?? "…"}
      </p>
      <button id="increment" onClick={increment} disabled={!counter.isConnected}>
        +1
      </button>
      <p className="status">
        <span id="status">{counter.connStatus}</span> to {endpoint}
      </p>
      {problem && (
        <p id="error" className="error">
          {problem.group && problem.code ? `${problem.group}.${problem.code}: ` : ""}
          {problem.message}
        </p>
      )}
    </main>
  );
}

createRoot(document.getElementById("root")).render(<Counter />);
