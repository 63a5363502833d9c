// plotly.js's prebuilt bundle has no type declarations; the renderer types what it uses
declare module 'plotly.js-dist-min';
