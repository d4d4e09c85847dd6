'use client';
import { useEffect, useState } from 'react';
import * as api from 'edge-authz';
import { roundTrip } from '../roundtrip.mjs';

export default function ClientRoundTrip() {
  const [out, setOut] = useState(null);
  useEffect(() => {
    try {
      setOut(JSON.stringify(roundTrip(api)));
    } catch (e) {
      setOut(JSON.stringify({ failure: String((e && e.stack) || e) }));
    }
  }, []);
  return out === null ? null : <pre id="client">{out}</pre>;
}
