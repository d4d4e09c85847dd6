// No favicon: the page requests nothing that is not there.
export const metadata = { title: 'edge-authz in Next.js', icons: { icon: 'data:,' } };

export default function RootLayout({ children }) {
  return (
    <html lang="en">
      <body>{children}</body>
    </html>
  );
}
